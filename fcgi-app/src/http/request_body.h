#pragma once
// Reading named fields out of a request body that is either JSON or an HTML form: the one
// place that knows which content types hashd accepts and how a field must be typed.

#include <json/json.h>

#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "core/secret.h"
#include "http/http.h"

namespace hashd {

// A body parsed as a JSON object, form bodies turned into an object of string fields. Its
// string values are wiped when it is destroyed: one of them may be a password.
class RequestBody : public Json::Value {
  public:
    RequestBody(Json::Value value, bool from_form)
        : Json::Value(std::move(value)), from_form_(from_form) {}
    RequestBody(RequestBody&&) = default;
    RequestBody& operator=(RequestBody&&) = delete;
    ~RequestBody();

    // True when the body was a form, whose fields are all strings ("cost=12").
    bool from_form() const { return from_form_; }

  private:
    bool from_form_;
};

// Parses `request`'s body. 415 for content types other than JSON (and forms when
// `allow_form`); 400 "invalid_json" for malformed JSON; 400 "invalid_encoding" for a form
// field among `form_fields` whose percent-encoding is malformed.
Result<RequestBody> ParseBody(const Request& request, bool allow_form,
                              std::initializer_list<std::string_view> form_fields);

// The string field `name`; 400 naming the field when it is missing or not a string.
Result<std::string> RequireString(const Json::Value& body, const char* name);

// The string field `name` as a Secret (no copy of it outlives its use unwiped); 400 naming
// the field when it is missing or not a string.
Result<Secret> RequireSecret(const Json::Value& body, const char* name);

// An optional integer field; 400 "invalid_field" when present but not a JSON integer (a
// string such as "12" is refused), or, in a form, not 1 to 3 decimal digits.
Result<std::optional<int>> OptionalInt(const RequestBody& body, const char* name);

}  // namespace hashd
