#include "api/multivac_handlers.h"

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
    auto queued = TimedStore(services.store, services.metrics, "enqueue", StoreAccess::kWrite,
                             [&] { return services.store.Queue().Enqueue(data.value()); });
    if (!queued.ok()) return queued.error();
    Response response;
    response.body = kUpdated;
    return response;
}

}  // namespace hashd
