#include "api/message_handlers.h"

#include <cctype>

#include "core/json.h"
#include "core/sha256.h"
#include "core/text.h"
#include "http/request_body.h"
#include "store/timed_store.h"

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

// The older digest service's exact text, for unknown and malformed digests alike.
Error NotFound() {
    return {ErrorKind::kNotFound, "message_not_found", "Message not found"};
}

}  // namespace

Result<Response> HandlePostMessage(const Request& request, const Services& services) {
    auto body = ParseBody(request, /*allow_form=*/false, {});
    if (!body.ok()) return body.error();
    auto message = RequireString(body.value(), "message");
    if (!message.ok()) return message.error();
    if (message.value().size() > kMaxMessageBytes)
        return Error{ErrorKind::kTooLarge, "message_too_large",
                     "The message is larger than 64 KiB of UTF-8; send at most 65536 bytes."};
    if (!IsValidUtf8(message.value()))
        return Error{ErrorKind::kInvalid, "message_not_utf8", "The message must be valid UTF-8."};

    const std::string digest = Sha256Hex(message.value());
    auto stored = TimedStore(services.store, services.metrics, "put", StoreAccess::kWrite,
                             [&] { return services.store.Put(digest, message.value()); });
    if (!stored.ok()) return stored.error();
    Json::Value out(Json::objectValue);
    out["digest"] = digest;
    Response response;
    response.status = 201;
    response.body = WriteJson(out);
    response.AddHeader("Location", std::string(kMessagesPrefix) + digest);
    return response;
}

Result<Response> HandleGetMessage(const Request& request, const Services& services) {
    auto digest = NormalizeDigest(std::string_view(request.path).substr(kMessagesPrefix.size()));
    if (!digest) return NotFound();
    auto found = TimedStore(services.store, services.metrics, "get", StoreAccess::kRead,
                            [&] { return services.store.Get(*digest); });
    if (!found.ok()) return found.error();
    if (!found.value()) return NotFound();
    Json::Value out(Json::objectValue);
    out["message"] = *found.value();
    Response response;
    response.body = WriteJson(out);
    return response;
}

}  // namespace hashd
