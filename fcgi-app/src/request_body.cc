#include "request_body.h"

#include "json.h"
#include "text.h"

namespace hashd {

Result<Json::Value> ParseBody(const Request& request, bool allow_form,
                              std::initializer_list<std::string_view> form_fields) {
    const std::string media = MediaType(request.content_type);
    if (media == "application/json") return ParseJsonObject(request.body);
    if (allow_form && media == "application/x-www-form-urlencoded") {
        Json::Value object(Json::objectValue);
        for (std::string_view field : form_fields) {
            if (auto value = FormField(request.body, field)) object[std::string(field)] = *value;
        }
        return object;
    }
    return ApiError{415, "unsupported_media_type",
                    allow_form ? "Send the body as application/json or "
                                 "application/x-www-form-urlencoded."
                               : "Send the body as application/json."};
}

Result<std::string> RequireString(const Json::Value& body, const char* name) {
    const Json::Value& field = body[name];
    if (field.isNull())
        return ApiError{400, "missing_field",
                        std::string("The field \"") + name + "\" is required."};
    if (!field.isString())
        return ApiError{400, "invalid_field",
                        std::string("The field \"") + name + "\" must be a string."};
    return field.asString();
}

Result<std::optional<int>> OptionalInt(const Json::Value& body, const char* name) {
    const Json::Value& field = body[name];
    if (field.isNull()) return std::optional<int>{};
    if (field.isString()) {  // form fields arrive as strings
        const std::string& text = field.asString();
        if (!text.empty() && text.size() <= 3 &&
            text.find_first_not_of("0123456789") == std::string::npos)
            return std::optional<int>{std::stoi(text)};
    } else if ((field.type() == Json::intValue || field.type() == Json::uintValue) &&
               field.isInt()) {
        return std::optional<int>{field.asInt()};
    }
    return ApiError{400, "invalid_field",
                    std::string("The field \"") + name + "\" must be an integer."};
}

}  // namespace hashd
