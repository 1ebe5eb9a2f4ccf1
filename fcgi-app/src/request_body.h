#pragma once
// Reading a named string field out of a request body that is either JSON or an HTML form:
// the one place that knows which content types hashd accepts.

#include <json/json.h>

#include <optional>
#include <string>
#include <string_view>

#include "http.h"
#include "result.h"

namespace hashd {

// A body parsed as a JSON object, with form bodies turned into an object of string fields.
// 415 for other content types, 400 for malformed bodies.
Result<Json::Value> ParseBody(const Request& request, bool allow_form,
                              std::initializer_list<std::string_view> form_fields);

// The string field `name`; 400 naming the field when it is missing or not a string.
Result<std::string> RequireString(const Json::Value& body, const char* name);

// An optional integer field; 400 when present but not an integer.
Result<std::optional<int>> OptionalInt(const Json::Value& body, const char* name);

}  // namespace hashd
