#pragma once
// The one JSON error writer: every error body hashd produces has the same shape,
// {"err_msg": "...", "error": "<code>", "request_id": "<id>"}, as nginx's own error pages do.

#include <string>

#include "core/result.h"
#include "http/http.h"

namespace hashd {

// The HTTP status of an error of `kind`: the one place that maps errors to HTTP.
int StatusOf(ErrorKind kind);

Response ErrorResponse(const Error& error, const std::string& request_id);

}  // namespace hashd
