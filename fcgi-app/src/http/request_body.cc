#include "http/request_body.h"

#include "core/json.h"
#include "core/text.h"

namespace hashd {
namespace {

Error MissingField(const char* name) {
    return Error{ErrorKind::kInvalid, "missing_field",
                 std::string("The field \"") + name + "\" is required."};
}

Error NotAString(const char* name) {
    return Error{ErrorKind::kInvalid, "invalid_field",
                 std::string("The field \"") + name + "\" must be a string."};
}

}  // namespace

RequestBody::~RequestBody() {
    WipeStrings(*this);
}

Result<RequestBody> ParseBody(const Request& request, bool allow_form,
                              std::initializer_list<std::string_view> form_fields) {
    const std::string media = MediaType(request.content_type);
    if (media == "application/json") {
        auto parsed = ParseJsonObject(request.body);
        if (!parsed.ok()) return parsed.error();
        return RequestBody(std::move(parsed).value(), false);
    }
    if (allow_form && media == "application/x-www-form-urlencoded") {
        RequestBody object(Json::Value(Json::objectValue), true);
        for (std::string_view field : form_fields) {
            auto value = FormField(request.body, field);
            if (!value.ok())
                return Error{ErrorKind::kInvalid, "invalid_encoding",
                             "The form field \"" + std::string(field) +
                                 "\" is not valid percent-encoding (%XX with two hex digits)."};
            if (value.value()) {
                object[std::string(field)] = *value.value();
                Wipe(*value.value());
            }
        }
        return object;
    }
    return Error{ErrorKind::kUnsupportedType, "unsupported_media_type",
                 allow_form ? "Send the body as application/json or "
                              "application/x-www-form-urlencoded."
                            : "Send the body as application/json."};
}

Result<std::string> RequireString(const Json::Value& body, const char* name) {
    const Json::Value& field = body[name];
    if (field.isNull()) return MissingField(name);
    if (!field.isString()) return NotAString(name);
    return field.asString();
}

Result<Secret> RequireSecret(const Json::Value& body, const char* name) {
    const Json::Value& field = body[name];
    if (field.isNull()) return MissingField(name);
    const char* begin = nullptr;
    const char* end = nullptr;
    if (!field.isString() || !field.getString(&begin, &end)) return NotAString(name);
    return Secret(std::string_view(begin, static_cast<std::size_t>(end - begin)));
}

Result<std::optional<int>> OptionalInt(const RequestBody& body, const char* name) {
    const Json::Value& field = body[name];
    if (field.isNull()) return std::optional<int>{};
    if (body.from_form() && field.isString()) {  // form fields arrive as strings
        const std::string& text = field.asString();
        if (!text.empty() && text.size() <= 3 &&
            text.find_first_not_of("0123456789") == std::string::npos)
            return std::optional<int>{std::stoi(text)};
    } else if ((field.type() == Json::intValue || field.type() == Json::uintValue) &&
               field.isInt()) {
        return std::optional<int>{field.asInt()};
    }
    return Error{ErrorKind::kInvalid, "invalid_field",
                 std::string("The field \"") + name + "\" must be an integer."};
}

}  // namespace hashd
