#include "http/errors.h"

#include <algorithm>
#include <cstddef>
#include <iterator>

#include "core/json.h"

namespace hashd {

int StatusOf(ErrorKind kind) {
    // In ErrorKind's order: kInvalid, kNotFound, kMethodNotAllowed, kGone, kTooLarge,
    // kUnsupportedType, kInternal, kUnavailable, kFull, kLimited, kClientGone (nginx's 499),
    // kUnauthenticated, kForbidden.
    constexpr int kStatusOfKind[] = {400, 404, 405, 410, 413, 415, 500,
                                     503, 507, 429, 499, 401, 403};
    static_assert(std::size(kStatusOfKind) == static_cast<std::size_t>(ErrorKind::kForbidden) + 1,
                  "one status per ErrorKind");
    return kStatusOfKind[static_cast<std::size_t>(kind)];
}

Response ErrorResponse(const Error& error, const std::string& request_id) {
    Json::Value body(Json::objectValue);
    body["err_msg"] = error.message;
    body["error"] = error.code;
    body["request_id"] = request_id;
    Response response;
    response.status = StatusOf(error.kind);
    response.body = WriteJson(body);
    response.error_code = error.code;
    response.error_detail = error.detail;
    // Retry-After takes whole seconds only (RFC 9110); a finer hint rides beside it.
    const int seconds = std::max(error.retry_after_seconds, (error.retry_after_ms + 999) / 1000);
    if (seconds > 0) response.AddHeader("Retry-After", std::to_string(seconds));
    // RFC 9110: a 401 names the scheme it wants (a route that takes only mTLS gets it too:
    // Bearer is the credential a client can add to the request itself).
    if (error.kind == ErrorKind::kUnauthenticated) response.AddHeader("WWW-Authenticate", "Bearer");
    if (error.retry_after_ms > 0)
        response.AddHeader("Retry-After-Ms", std::to_string(error.retry_after_ms));
    return response;
}

}  // namespace hashd
