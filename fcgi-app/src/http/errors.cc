#include "http/errors.h"

#include <algorithm>

#include "core/json.h"

namespace hashd {

int StatusOf(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::kInvalid:
            return 400;
        case ErrorKind::kNotFound:
            return 404;
        case ErrorKind::kMethodNotAllowed:
            return 405;
        case ErrorKind::kGone:
            return 410;
        case ErrorKind::kTooLarge:
            return 413;
        case ErrorKind::kUnsupportedType:
            return 415;
        case ErrorKind::kInternal:
            return 500;
        case ErrorKind::kUnavailable:
            return 503;
        case ErrorKind::kFull:
            return 507;
        case ErrorKind::kLimited:
            return 429;
    }
    return 500;
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
    if (error.retry_after_ms > 0)
        response.AddHeader("Retry-After-Ms", std::to_string(error.retry_after_ms));
    return response;
}

}  // namespace hashd
