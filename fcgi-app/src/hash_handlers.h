#pragma once
// The password-hashing API: POST /v1/hash, POST /v1/verify and the original app's
// GET /gethash/<password>/, kept byte-compatible for its clients.

#include "http.h"
#include "services.h"

namespace hashd {

Response HandleHash(const Request& request, const Services& services);
Response HandleVerify(const Request& request, const Services& services);
Response HandleLegacyGetHash(const Request& request, const Services& services);

}  // namespace hashd
