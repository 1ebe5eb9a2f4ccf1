#pragma once
// The one JSON reader/writer configuration of the service: strict parsing (no comments, no
// trailing garbage, no duplicate keys, nesting bounded) and compact UTF-8 output.

#include <json/json.h>

#include <string>
#include <string_view>

#include "core/result.h"

namespace hashd {

// Parses a request body that must be a JSON object. kInvalid "invalid_json" for anything else:
// malformed text, another type at the top, nesting deeper than 64 levels, and \u escapes
// that are lone UTF-16 surrogates (jsoncpp would silently turn "\ud800\u0041" into another
// character). Never throws.
Result<Json::Value> ParseJsonObject(std::string_view body);

// Compact JSON, non-ASCII written as UTF-8 rather than \u escapes.
std::string WriteJson(const Json::Value& value);

// Overwrites every string value in `value` (recursively) and leaves it null: for trees that
// held a password. Object keys are names chosen by the API, not secrets, and stay as they are
// until the tree is freed.
void WipeStrings(Json::Value& value);

}  // namespace hashd
