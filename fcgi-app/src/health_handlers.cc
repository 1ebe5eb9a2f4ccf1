#include "health_handlers.h"

#include <unistd.h>

#include "json.h"
#include "worker_metrics.h"

namespace hashd {

Result<Response> HandleHealthz(const Request&, const Services&) {
    Response response;
    response.body = R"({"status":"ok"})";
    return response;
}

namespace {

// The draining checks both readiness routes share; ok when neither applies.
Status Draining(const Services& services) {
    if (services.draining.load())
        return ApiError{503, "draining", "This process is shutting down.", 1};
    // The operator's drain switch for the whole VM (scale-in, rolling upgrade): the load
    // balancer takes the VM out after its health check's fall count while every request
    // still in flight, or still arriving meanwhile, is served. A file under the runtime
    // directory, so a reboot undrains.
    if (access((services.config.runtime_dir + "/drain").c_str(), F_OK) == 0)
        return ApiError{503, "draining", "This VM is drained by its operator.", 1};
    return Ok{};
}

}  // namespace

Result<Response> HandleReadyz(const Request&, const Services& services) {
    if (auto draining = Draining(services); !draining.ok()) return draining.error();
    if (auto store = services.readiness.StoreStatus(); !store.ok()) {
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

Result<Response> HandleReadyzServing(const Request&, const Services& services) {
    if (auto draining = Draining(services); !draining.ok()) return draining.error();
    Response response;
    response.body = R"({"status":"serving"})";
    return response;
}

Result<Response> HandleMetrics(const Request&, const Services& services) {
    Response response;
    response.content_type = "text/plain; version=0.0.4; charset=utf-8";
    response.body = services.metrics.Render() + RenderQueueMetrics(services);
    return response;
}

}  // namespace hashd
