#include "message_handlers.h"

#include <cctype>

#include "errors.h"
#include "json.h"
#include "request_body.h"
#include "sha256.h"
#include "text.h"
#include "timed_store.h"

namespace hashd {
namespace {

constexpr std::string_view kMessagesPrefix = "/messages/";

// Lower-cased digest, or nullopt when `text` is not 64 hex characters.
std::optional<std::string> NormalizeDigest(std::string_view text) {
    if (text.size() != 64) return std::nullopt;
    std::string digest;
    digest.reserve(64);
    for (char ch : text) {
        if (!std::isxdigit(static_cast<unsigned char>(ch))) return std::nullopt;
        digest += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
    return digest;
}

Response NotFound(const Request& request) {
    return ErrorResponse({404, "message_not_found", "Message not found"}, request.request_id);
}

}  // namespace

Response HandlePostMessage(const Request& request, const Services& services) {
    auto body = ParseBody(request, /*allow_form=*/false, {});
    if (!body.ok()) return ErrorResponse(body.error(), request.request_id);
    auto message = RequireString(body.value(), "message");
    if (!message.ok()) return ErrorResponse(message.error(), request.request_id);
    if (message.value().size() > kMaxMessageBytes)
        return ErrorResponse({413, "message_too_large",
                              "The message is larger than 64 KiB of UTF-8; send at most 65536 "
                              "bytes."},
                             request.request_id);
    if (!IsValidUtf8(message.value()))
        return ErrorResponse({400, "message_not_utf8", "The message must be valid UTF-8."},
                             request.request_id);

    const std::string digest = Sha256Hex(message.value());
    auto stored =
        TimedStore(services, "put", [&] { return services.store.Put(digest, message.value()); });
    if (!stored.ok()) return ErrorResponse(stored.error(), request.request_id);
    Json::Value out(Json::objectValue);
    out["digest"] = digest;
    Response response;
    response.status = 201;
    response.body = WriteJson(out);
    response.AddHeader("Location", std::string(kMessagesPrefix) + digest);
    return response;
}

Response HandleGetMessage(const Request& request, const Services& services) {
    auto digest = NormalizeDigest(std::string_view(request.path).substr(kMessagesPrefix.size()));
    if (!digest) return NotFound(request);
    auto found = TimedStore(services, "get", [&] { return services.store.Get(*digest); });
    if (!found.ok()) return ErrorResponse(found.error(), request.request_id);
    if (!found.value()) return NotFound(request);
    Json::Value out(Json::objectValue);
    out["message"] = *found.value();
    Response response;
    response.body = WriteJson(out);
    return response;
}

}  // namespace hashd
