#pragma once
// Pool-wide Prometheus metrics. (The shared region is described in metrics/region.cc, what the
// pool's series mean in metrics/shared_metrics.cc.)
// Every method is thread-safe and cheap (atomic adds); Render() produces the text exposition of
// the whole pool of processes on this VM, not only of this process.

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/config.h"
#include "core/result.h"

namespace hashd {

// A route as the metrics count it: its label (e.g. "/messages/:digest", never the raw path) and
// the method it serves. The metrics keep the views: they must outlive the Metrics (the
// router's table is static).
struct RouteKey {
    std::string_view label;
    std::string_view method;
};

class Metrics {
  public:
    // Maps (creating if needed) the shared region config.runtime_dir + "/metrics.shm", laid out
    // for `routes` (the router's, in its order), and claims the slot of config.instance. A
    // restarted process takes its old slot back, so counters never go backwards while the VM is up.
    // Fails (kInternal, "metrics_unavailable") when the directory is missing or not writable, or
    // ("metrics_slot_taken") when another live process holds the same instance's slot for ~3 s.
    static Result<std::unique_ptr<Metrics>> Open(const Config& config,
                                                 std::span<const RouteKey> routes);
    virtual ~Metrics() = default;

    virtual void RecordRequest(std::string_view route, std::string_view method, int status,
                               double duration_seconds) = 0;
    virtual void RecordHash(int cost, double seconds) = 0;
    virtual void RecordQueueWait(double seconds) = 0;
    virtual void RecordShed(std::string_view reason) = 0;
    virtual void RecordStore(std::string_view backend, std::string_view op, bool ok,
                             double seconds) = 0;
    virtual void RecordLegacyGet() = 0;
    virtual void AddInflight(int delta) = 0;
    virtual void AddBusyWorkers(int delta) = 0;
    virtual void SetWorkers(int count) = 0;

    // The Prometheus text exposition (format 0.0.4) of the whole pool: counters and
    // histograms summed over every process that ever used the region, gauges over the live
    // ones. Label values outside the fixed sets (routes, methods, statuses, ...) are counted
    // under "other"; costs outside 4..31 are not recorded.
    virtual std::string Render() const = 0;
};

}  // namespace hashd
