#include "json.h"

#include <memory>

namespace hashd {

Result<Json::Value> ParseJsonObject(std::string_view body) {
    static const Json::CharReaderBuilder builder = [] {
        Json::CharReaderBuilder b;
        Json::CharReaderBuilder::strictMode(&b.settings_);
        b["stackLimit"] = 64;  // bounds recursion on hostile nesting
        return b;
    }();
    std::unique_ptr<Json::CharReader> reader(builder.newCharReader());
    Json::Value root;
    std::string errors;
    if (!reader->parse(body.data(), body.data() + body.size(), &root, &errors))
        return ApiError{400, "invalid_json", "The request body is not valid JSON."};
    if (!root.isObject())
        return ApiError{400, "invalid_json", "The request body must be a JSON object."};
    return root;
}

std::string WriteJson(const Json::Value& value) {
    static const Json::StreamWriterBuilder builder = [] {
        Json::StreamWriterBuilder b;
        b["indentation"] = "";
        b["emitUTF8"] = true;
        return b;
    }();
    return Json::writeString(builder, value);
}

}  // namespace hashd
