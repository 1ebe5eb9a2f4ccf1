#pragma once
// Metrics of the MultiVAC queue and of hashd-worker, as GET /metrics shows them.
//
// Why a file. hashd-worker is not a FastCGI process and has no HTTP listener of its own, and
// the pool's shared metrics region is sized for the FastCGI instances. So the worker keeps its
// few counters in memory and rewrites them, about once a second, to
// <HASHD_RUNTIME_DIR>/hashd-worker.prom (written to a temporary file and renamed, so a reader
// never sees half of it). Every FastCGI process appends that file to its /metrics answer, with
// hashd_worker_up computed from the heartbeat time in it: a worker that died, hung or was
// stopped stops refreshing the file, and within kWorkerStaleAfter the pool reports it down.
// A restarted worker reads the file back first, so its counters never go backwards while the
// VM is up (the file is in /run: a reboot starts them over, which rate() handles).
//
// The queue's depth and the age of its oldest datum are not the worker's to report (a stopped
// worker is when they matter most): /metrics asks the store for them at scrape time.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/config.h"
#include "core/result.h"

namespace hashd {

// Upper bounds of the processing-duration histogram, in seconds.
inline constexpr std::array<double, 9> kProcessingBounds = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                                            0.05,  0.1,    0.5,   2.5};
// A worker whose file is older than this is reported down (it rewrites it every second).
inline constexpr double kWorkerStaleAfter = 15.0;

struct WorkerCounters {
    std::uint64_t processed = 0;             // data completed
    std::uint64_t failed = 0;                // completions that failed (the datum stays queued)
    std::uint64_t consecutive_failures = 0;  // failed since the last success (a gauge)
    std::array<std::uint64_t, kProcessingBounds.size() + 1> buckets{};  // per bound, then +Inf
    double duration_sum = 0;                                            // seconds

    void Observe(double seconds);
};

// <runtime_dir>/hashd-worker.prom
std::string WorkerMetricsPath(const Config& config);

// The worker's families in the Prometheus text format, with `heartbeat` (Unix seconds) as
// hashd_worker_heartbeat_timestamp_seconds.
std::string FormatWorkerMetrics(const WorkerCounters& counters, double heartbeat);

// Reads back what FormatWorkerMetrics wrote; zeros (and heartbeat 0) for missing series.
WorkerCounters ParseWorkerMetrics(std::string_view text, double* heartbeat);

// Replaces `path` atomically with `text`. Fails (kInternal) naming the path.
Status WriteFileAtomically(const std::string& path, std::string_view text);

// The queue as the store reports it at scrape time (QueueStats, store/data_queue.h).
struct QueueGauges {
    std::int64_t depth = 0;
    std::optional<double> oldest_enqueued_at;  // Unix seconds
};

// The MultiVAC families for GET /metrics: the worker's (from its file, zeros without one),
// hashd_worker_up, and the queue's depth and oldest age when `queue` is set (the API layer
// leaves it unset when the store cannot be read: the store alerts cover that).
std::string RenderQueueMetrics(const Config& config, const std::optional<QueueGauges>& queue);

}  // namespace hashd
