#pragma once
// The one JSON reader/writer configuration of the service: strict parsing (no comments, no
// trailing garbage, no duplicate keys) and compact UTF-8 output.

#include <json/json.h>

#include <string>
#include <string_view>

#include "result.h"

namespace hashd {

// Parses a request body that must be a JSON object. 400 "invalid_json" otherwise.
Result<Json::Value> ParseJsonObject(std::string_view body);

// Compact JSON, non-ASCII written as UTF-8 rather than \u escapes.
std::string WriteJson(const Json::Value& value);

}  // namespace hashd
