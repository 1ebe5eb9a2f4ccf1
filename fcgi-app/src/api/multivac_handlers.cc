#include "api/multivac_handlers.h"

#include <algorithm>

#include "core/sha256.h"
#include "core/text.h"
#include "http/errors.h"
#include "http/request_body.h"
#include "store/timed_store.h"

namespace hashd {
namespace {

// What Flask answered for a view returning a str: its default HTML content type. The bodies
// are shown to browsers as HTML; nginx's Content-Security-Policy (default-src 'none') and
// nosniff keep a datum that looks like markup from running anything.
constexpr std::string_view kHtml = "text/html; charset=utf-8";
constexpr std::string_view kWelcome = "Welcome to MultiVAC!";
constexpr std::string_view kInsufficient = "INSUFFICIENT DATA FOR MEANINGFUL ANSWER.";
// The original's body as its clients saw it.
constexpr std::string_view kUpdated = R"({"response": "MultiVAC updated!"})";
// A datum is at most what a message may be.
constexpr std::size_t kMaxDatumBytes = 64 * 1024;

// The longest Idempotency-Key accepted (a UUID is 36; the IETF draft sets no bound).
constexpr std::size_t kMaxIdempotencyKeyBytes = 255;

// The queue's idempotency key of a POST: the client's Idempotency-Key, else the request id
// nginx passed (the same on nginx's and the load balancer's retries), scoped to the client so
// that two clients choosing the same key never share a datum; "" when there is neither.
// Hashed, so every backend stores a short key of one length whatever the client sent.
Result<std::string> EnqueueKey(const Request& request) {
    const std::string& key = request.idempotency_key;
    if (!key.empty()) {
        const bool printable = std::all_of(key.begin(), key.end(),
                                           [](unsigned char c) { return c >= 0x21 && c <= 0x7e; });
        if (key.size() > kMaxIdempotencyKeyBytes || !printable)
            return Error{ErrorKind::kInvalid, "invalid_idempotency_key",
                         "The Idempotency-Key header must be 1 to 255 visible ASCII characters "
                         "(a UUID is a good choice)."};
        return Sha256Hex("key\n" + request.client + "\n" + key);
    }
    if (request.request_id_from_proxy)
        return Sha256Hex("request-id\n" + request.client + "\n" + request.request_id);
    return std::string();
}

Response Html(std::string_view body) {
    Response response;
    response.content_type = kHtml;
    response.body = body;
    return response;
}

}  // namespace

Result<Response> HandleMultivacWelcome(const Request&, const Services&) {
    return Html(kWelcome);
}

Result<Response> HandleMultivacAnswer(const Request&, const Services& services) {
    auto first = TimedStore(services.store, services.metrics, "first", StoreAccess::kRead,
                            [&] { return services.store.Queue().First(); });
    if (!first.ok()) return first.error();
    if (!first.value()) return Html(kInsufficient);
    return Html(*first.value());
}

Result<Response> HandleMultivacData(const Request& request, const Services& services) {
    auto body = ParseBody(request, /*allow_form=*/true, {"data"});
    if (!body.ok()) return body.error();
    auto data = RequireString(body.value(), "data");
    if (!data.ok()) return data.error();
    if (data.value().size() > kMaxDatumBytes)
        return Error{ErrorKind::kTooLarge, "data_too_large",
                     "The field \"data\" is larger than 64 KiB; send at most 65536 bytes."};
    // It is served back as a UTF-8 page: refuse what could not be one.
    if (!IsValidUtf8(data.value()))
        return Error{ErrorKind::kInvalid, "data_not_utf8",
                     "The field \"data\" must be valid UTF-8."};
    auto key = EnqueueKey(request);
    if (!key.ok()) return key.error();
    auto queued = TimedStore(services.store, services.metrics, "enqueue", StoreAccess::kWrite, [&] {
        return services.store.Queue().Enqueue(data.value(), key.value());
    });
    if (!queued.ok()) return queued.error();
    Response response;
    response.body = kUpdated;
    // The body is the original's, byte for byte; the id is extra, and a retry gets the same.
    response.AddHeader("X-Datum-Id", queued.value());
    return response;
}

}  // namespace hashd
