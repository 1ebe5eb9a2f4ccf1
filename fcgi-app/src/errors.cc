#include "errors.h"

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
    if (error.retry_after_seconds > 0)
        response.AddHeader("Retry-After", std::to_string(error.retry_after_seconds));
    return response;
}

}  // namespace hashd
