#include "health_handlers.h"

#include "json.h"
#include "worker_metrics.h"

namespace hashd {

Result<Response> HandleHealthz(const Request&, const Services&) {
    Response response;
    response.body = R"({"status":"ok"})";
    return response;
}

Result<Response> HandleReadyz(const Request&, const Services& services) {
    if (services.draining.load())
        return ApiError{503, "draining", "This process is shutting down.", 1};
    if (auto store = services.store.Check(); !store.ok()) {
        ApiError error = store.error();
        error.status = 503;
        error.message = "Not ready: the " + std::string(services.store.Backend()) +
                        " message store is unavailable.";
        if (error.retry_after_seconds == 0) error.retry_after_seconds = 1;
        return error;
    }
    Json::Value body(Json::objectValue);
    body["status"] = "ready";
    body["store"] = std::string(services.store.Backend());
    Response response;
    response.body = WriteJson(body);
    return response;
}

Result<Response> HandleMetrics(const Request&, const Services& services) {
    Response response;
    response.content_type = "text/plain; version=0.0.4; charset=utf-8";
    response.body = services.metrics.Render() + RenderQueueMetrics(services);
    return response;
}

}  // namespace hashd
