#include "api/health_handlers.h"

#include <unistd.h>

#include <optional>

#include "core/json.h"
#include "metrics/worker_metrics.h"
#include "store/timed_store.h"

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
        return Error{ErrorKind::kUnavailable, "draining", "This process is shutting down.", 1};
    // The operator's drain switch for the whole VM (scale-in, rolling upgrade): the load
    // balancer takes the VM out after its health check's fall count while every request
    // still in flight, or still arriving meanwhile, is served. A file under the runtime
    // directory, so a reboot undrains.
    if (access((services.config.runtime_dir + "/drain").c_str(), F_OK) == 0)
        return Error{ErrorKind::kUnavailable, "draining", "This VM is drained by its operator.", 1};
    return Ok{};
}

}  // namespace

Result<Response> HandleReadyz(const Request&, const Services& services) {
    if (auto draining = Draining(services); !draining.ok()) return draining.error();
    // Through TimedStore like every store call: measured, and the accept turn is passed on
    // first, so a hung store holds only this thread.
    const auto check = [&] {
        return TimedStore(services.store, services.metrics, "check", StoreAccess::kRead,
                          [&] { return services.store.Check(); });
    };
    // Whatever the store's failure (unreachable, full, misconfigured), this process is not
    // ready: the store's code and detail stay, the kind and the sentence are readiness's.
    if (auto store = services.readiness.StoreStatus(check); !store.ok()) {
        const Error& cause = store.error();
        return Error{ErrorKind::kUnavailable,
                     cause.code,
                     "Not ready: the " + std::string(services.store.Backend()) +
                         " message store is unavailable.",
                     cause.retry_after_seconds == 0 ? 1 : cause.retry_after_seconds,
                     cause.detail,
                     cause.retry_after_ms};
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
    std::optional<QueueGauges> queue;
    // Through TimedStore: measured, and the accept turn is passed on first.
    auto stats = TimedStore(services.store, services.metrics, "stats", StoreAccess::kRead,
                            [&] { return services.store.Queue().Stats(); });
    if (stats.ok()) queue = QueueGauges{stats.value().depth, stats.value().oldest_enqueued_at};
    response.body = services.metrics.Render() + RenderQueueMetrics(services.config, queue);
    return response;
}

}  // namespace hashd
