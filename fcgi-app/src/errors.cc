#include "errors.h"

#include <algorithm>

#include "json.h"

namespace hashd {

Response ErrorResponse(const ApiError& error, const std::string& request_id) {
    Json::Value body(Json::objectValue);
    body["err_msg"] = error.message;
    body["error"] = error.code;
    body["request_id"] = request_id;
    Response response;
    response.status = error.status;
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

const char* ReasonPhrase(int status) {
    switch (status) {
        case 200:
            return "OK";
        case 201:
            return "Created";
        case 400:
            return "Bad Request";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 410:
            return "Gone";
        case 413:
            return "Payload Too Large";
        case 415:
            return "Unsupported Media Type";
        case 429:
            return "Too Many Requests";
        case 503:
            return "Service Unavailable";
        case 507:
            return "Insufficient Storage";
        default:
            return status < 500 ? "Client Error" : "Internal Server Error";
    }
}

}  // namespace hashd
