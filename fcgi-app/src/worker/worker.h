#pragma once
// The loop of hashd-worker: consumes the MultiVAC queue of the configured store (data_queue.h)
// until told to stop.
//
// Each turn it claims the oldest datum (waiting up to kClaimWait for one), completes it (the
// store records it and removes it in one atomic step), logs the datum's id (never its
// content), and counts it. Every kRecoverInterval it calls DataQueue::Recover, which renews
// its liveness and puts back data claimed by consumers that died (Redis), then
// DataQueue::PruneProcessed, one bounded batch of the processed data an older version kept
// (logged when it starts and when none is left).
//
// The store being down is not a reason to exit: the loop logs the outage once, retries every
// kRetryInterval (each backend backs off its own connects), and logs the recovery. A datum
// whose completion failed stays queued and is tried again: delivery is at least once, and the
// effect exactly once because completing is idempotent. So systemd only restarts the worker
// when it really crashes or stops calling `alive` (its watchdog).
//
// A completion that keeps failing while claims succeed (LMDB map full, PostgreSQL disk full)
// would otherwise be a spin: the same head datum claimed again at once, a core and a journal
// flood (issue 21, finding 2; before this back-off: 4683 failed completions and 14016 log
// lines in 8 s). So each consecutive failure doubles the wait before the next claim, from
// kRetryInterval up to kMaxFailureBackoff; a success resets it. The log says the first
// failure of a streak, then at most one line per kFailureLogInterval with the count since,
// then the recovery. hashd_worker_failed_total counts every failure and
// hashd_worker_consecutive_failures the current streak (alerted on: HashdWorkerFailing).

#include <atomic>
#include <chrono>
#include <cstdint>
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
    static constexpr std::chrono::milliseconds kMaxFailureBackoff{15000};
    static constexpr std::chrono::seconds kFailureLogInterval{60};

    // Waits the given time (returns early when the worker is told to stop); the default
    // sleeps in slices of at most kClaimWait. Tests pass their own.
    using Sleep = std::function<void(std::chrono::milliseconds)>;

    // `metrics_path` is where the counters are kept (worker_metrics.h); they start from what
    // it holds. `backend` labels log entries.
    Worker(DataQueue& queue, const Logger& logger, std::string backend, std::string metrics_path,
           Sleep sleep = {});

    // Runs until `stop` is set (checked at least every kClaimWait); calls `alive` every turn,
    // so a caller can feed a watchdog from it. Writes the metrics file a last time on return.
    void Run(const std::atomic<bool>& stop, const std::function<void()>& alive);

  private:
    void StoreFailed(std::string_view what, const Error& error);
    void StoreBack();
    void Process(const Datum& datum);
    void CompletionFailed(const Datum& datum, const Error& error);
    void Prune();
    void SaveMetrics();
    void Wait(std::chrono::milliseconds delay);

    DataQueue& queue_;
    const Logger& logger_;
    std::string backend_;
    std::string metrics_path_;
    Sleep sleep_;
    const std::atomic<bool>* stop_ = nullptr;  // Run's, for the default sleep
    WorkerCounters counters_;
    bool store_down_ = false;
    bool recover_now_ = true;
    std::chrono::milliseconds failure_backoff_{0};  // before the next claim; 0: no streak
    std::chrono::steady_clock::time_point failure_logged_at_{};
    std::uint64_t failures_unlogged_ = 0;
    std::int64_t pruned_ = 0;  // processed data deleted by the pruning under way
};

}  // namespace hashd
