#include "core/json.h"

#include <memory>
#include <sstream>

#include "core/secret.h"
#include "core/text.h"

namespace hashd {
namespace {

// The code unit of the \uXXXX escape at text[at] ('\\' at text[at]), or -1 when malformed.
int EscapedUnit(std::string_view text, std::size_t at) {
    if (at + 6 > text.size() || text[at + 1] != 'u') return -1;
    int unit = 0;
    for (std::size_t i = at + 2; i < at + 6; ++i) {
        const int digit = HexValue(text[i]);
        if (digit < 0) return -1;
        unit = unit * 16 + digit;
    }
    return unit;
}

// True when every \u escape in a string of `body` that is a UTF-16 surrogate is half of a
// high-low pair. jsoncpp combines a high surrogate with whatever \u escape follows it and
// passes a lone low one through as invalid UTF-8; a client deserves a 400 for both. Only
// the escapes matter here; the parser judges everything else.
bool SurrogatesPaired(std::string_view body) {
    bool in_string = false;
    for (std::size_t i = 0; i < body.size(); ++i) {
        const char ch = body[i];
        if (!in_string) {
            in_string = ch == '"';
            continue;
        }
        if (ch == '"') {
            in_string = false;
        } else if (ch == '\\' && i + 1 < body.size()) {
            if (body[i + 1] != 'u') {
                ++i;  // \" \\ \n ...: skip the escaped character
                continue;
            }
            const int unit = EscapedUnit(body, i);
            if (unit < 0) return true;  // malformed: the parser's to refuse
            if (unit >= 0xDC00 && unit <= 0xDFFF) return false;  // low without a high
            if (unit >= 0xD800 && unit <= 0xDBFF) {
                const int low = EscapedUnit(body, i + 6);
                if (low < 0xDC00 || low > 0xDFFF) return false;
                i += 6;
            }
            i += 5;
        }
    }
    return true;
}

Error InvalidJson(std::string message = "The request body is not valid JSON.") {
    return Error{ErrorKind::kInvalid, "invalid_json", std::move(message)};
}

}  // namespace

Result<Json::Value> ParseJsonObject(std::string_view body) {
    static const Json::CharReaderBuilder builder = [] {
        Json::CharReaderBuilder b;
        Json::CharReaderBuilder::strictMode(&b.settings_);
        b["stackLimit"] = 64;  // bounds recursion on hostile nesting
        return b;
    }();
    if (!SurrogatesPaired(body))
        return InvalidJson(
            "The request body is not valid JSON: a \\u escape is an unpaired UTF-16 surrogate.");
    // One reader per thread, made once (a reader is built from the builder's settings, a map
    // lookup per setting; each parse starts from a clean state).
    thread_local const std::unique_ptr<Json::CharReader> reader(builder.newCharReader());
    Json::Value root;
    std::string errors;
    bool parsed = false;
    try {
        parsed = reader->parse(body.data(), body.data() + body.size(), &root, &errors);
    } catch (const Json::Exception&) {
        // jsoncpp reports nesting beyond stackLimit by throwing, not through `errors`. A
        // client's input is a 400 however the parser says no; a 500 would page on-call.
        parsed = false;
    }
    if (!parsed) {
        WipeStrings(root);  // a half-parsed tree may already hold the password
        return InvalidJson();
    }
    if (!root.isObject()) {
        WipeStrings(root);
        return InvalidJson("The request body must be a JSON object.");
    }
    return root;
}

std::string WriteJson(const Json::Value& value) {
    // One writer and one stream per thread, made once: Json::writeString would build a writer
    // from the builder's settings (a map lookup per setting) and a stream for every call,
    // which was most of the cost of a small response. The text is moved out of the stream, so
    // no copy of a message stays behind in it.
    static const Json::StreamWriterBuilder builder = [] {
        Json::StreamWriterBuilder b;
        b["indentation"] = "";
        b["emitUTF8"] = true;
        return b;
    }();
    thread_local const std::unique_ptr<Json::StreamWriter> writer(builder.newStreamWriter());
    thread_local std::ostringstream stream;
    stream.str(std::string());
    stream.clear();
    writer->write(value, &stream);
    return std::move(stream).str();
}

void WipeStrings(Json::Value& value) {
    if (value.isString()) {
        const char* begin = nullptr;
        const char* end = nullptr;
        // The bytes belong to `value` (jsoncpp copies strings it is given): writing them is
        // writing our own heap memory, which getString only hands out as const.
        if (value.getString(&begin, &end))
            Wipe(const_cast<char*>(begin), static_cast<std::size_t>(end - begin));
    } else if (value.isArray() || value.isObject()) {
        for (Json::Value& child : value) WipeStrings(child);
    }
    value = Json::Value();
}

}  // namespace hashd
