#pragma once
// The loop of hashd-worker: consumes the MultiVAC queue of the configured store (data_queue.h)
// until told to stop.
//
// Each turn it claims the oldest datum (waiting up to kClaimWait for one), completes it (the
// store records it and removes it in one atomic step), logs the datum's id (never its
// content), and counts it. Every kRecoverInterval it calls DataQueue::Recover, which renews
// its liveness and puts back data claimed by consumers that died (Redis).
//
// The store being down is not a reason to exit: the loop logs the outage once, retries every
// kRetryInterval (each backend backs off its own connects), and logs the recovery. A datum
// whose completion failed stays queued and is tried again: delivery is at least once, and the
// effect exactly once because completing is idempotent. So systemd only restarts the worker
// when it really crashes or stops calling `alive` (its watchdog).

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "core/logger.h"
#include "metrics/worker_metrics.h"
#include "store/data_queue.h"

namespace hashd {

class Worker {
  public:
    static constexpr std::chrono::milliseconds kClaimWait{1000};
    static constexpr std::chrono::milliseconds kRetryInterval{250};
    static constexpr std::chrono::seconds kRecoverInterval{2};
    static constexpr std::chrono::seconds kMetricsInterval{1};

    // `metrics_path` is where the counters are kept (worker_metrics.h); they start from what
    // it holds. `backend` labels log entries.
    Worker(DataQueue& queue, const Logger& logger, std::string backend, std::string metrics_path);

    // Runs until `stop` is set (checked at least every kClaimWait); calls `alive` every turn,
    // so a caller can feed a watchdog from it. Writes the metrics file a last time on return.
    void Run(const std::atomic<bool>& stop, const std::function<void()>& alive);

  private:
    void StoreFailed(std::string_view what, const Error& error);
    void StoreBack();
    void Process(const Datum& datum);
    void SaveMetrics();

    DataQueue& queue_;
    const Logger& logger_;
    std::string backend_;
    std::string metrics_path_;
    WorkerCounters counters_;
    bool store_down_ = false;
    bool recover_now_ = true;
};

}  // namespace hashd
