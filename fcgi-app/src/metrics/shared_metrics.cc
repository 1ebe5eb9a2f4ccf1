// Metrics over the shared region (metrics/region.cc describes the region itself).
//
// No locks on the hot path. Every counter and histogram bucket is a uint64_t updated with a
// relaxed atomic fetch_add (std::atomic_ref on the mapped memory; lock-free and address-free,
// which is what makes an atomic valid across processes: region.cc checks it at compile time).
// Counters are independent of each other, so relaxed ordering is enough; a scrape may see a
// histogram's sum a moment ahead of its buckets, which Prometheus tolerates. A histogram's
// _count is computed from its buckets at render time, so _count always equals the +Inf bucket.
// Gauges are signed values stored as two's-complement uint64_t and updated by adding deltas.
//
// Series that never counted anything are not rendered, so a scrape stays small (a few
// hundred lines); the exception is the error series that alerts need before the first error.
//
// What Render() reports for the pool:
//   - counters and histograms: the sum over every slot ever used (dead processes included);
//   - gauges (inflight, busy workers, workers, processes): the sum over live slots;
//   - process_resident_memory_bytes and process_open_fds: the sum over live processes, read
//     from /proc/<pid> (the units run as one user, so ProtectProc=invisible still shows them);
//   - process_cpu_seconds_total: a counter for the pool. Each scrape remembers in the slot the
//     CPU time it saw; when a slot is taken over by a new process, the last seen value of the
//     dead one moves into the slot's retired total. The pool's value never goes backwards (it
//     misses only the CPU a dead process used after the last scrape);
//   - process_start_time_seconds: the start time of the youngest live process, so a restart
//     of any process shows as a change; hashd_process_starts_total counts starts per VM.

#include "metrics/shared_metrics.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/build_info.h"
#include "metrics/exposition.h"
#include "metrics/process_stats.h"

namespace hashd {
namespace metrics {
namespace {

// Non-negative seconds to whole nanoseconds.
std::uint64_t Nanos(double seconds) {
    if (!(seconds > 0)) return 0;
    if (seconds > 1e9) seconds = 1e9;
    return static_cast<std::uint64_t>(std::llround(seconds * 1e9));
}

// The backend HASHD_STORE names (the store's own parsing is authoritative; this only picks
// which backend's series to show before its first operation).
std::size_t StoreBackendIndex(std::string_view store) {
    if (store.starts_with("lmdb:")) return 0;
    if (store.starts_with("redis://")) return 1;
    if (store.starts_with("postgresql://") || store.starts_with("postgres://")) return 2;
    return std::size(kBackends);  // none
}

}  // namespace

SharedMetrics::SharedMetrics(Layout layout, std::unique_ptr<Region> region,
                             std::size_t store_backend)
    : layout_(std::move(layout)),
      region_(std::move(region)),
      own_(region_->own_slot()),
      store_backend_(store_backend) {
    // The CPU time of the process that had the slot before moves to the retired total.
    for (SlotWord w : {kInflight, kBusy, kWorkers}) region_->Word(own_, w).store(0);
    region_->Word(own_, kCpuRetiredTicks).fetch_add(region_->Word(own_, kCpuSeenTicks).exchange(0));
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    region_->Word(own_, kStartUnixNs)
        .store(static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()));
    region_->Word(own_, kPid).store(static_cast<std::uint64_t>(getpid()));
    region_->Word(own_, kStarts).fetch_add(1);
}

SharedMetrics::~SharedMetrics() {
    // The gauges of a process that is gone must not count; Render() already skips slots
    // whose lock is free, this only tidies up the slot for readers of the raw file.
    for (SlotWord w : {kInflight, kBusy, kWorkers}) region_->Word(own_, w).store(0);
}

void SharedMetrics::RecordRequest(std::string_view route, std::string_view method, int status,
                                  double seconds) {
    const std::size_t r = RouteIndex(layout_, route);
    const std::size_t m = MethodIndex(method);
    Add(layout_.requests + (r * std::size(kMethods) + m) * kStatusSlots + StatusIndex(status));
    Observe(layout_.request_duration + r * HistogramCells(kRequestBounds), kRequestBounds, seconds);
}

void SharedMetrics::RecordHash(int cost, double seconds) {
    if (cost < kMinCost || cost > kMaxCost) return;
    Observe(layout_.hash_duration +
                static_cast<std::size_t>(cost - kMinCost) * HistogramCells(kHashBounds),
            kHashBounds, seconds);
}

void SharedMetrics::RecordQueueWait(double seconds) {
    Observe(layout_.queue_wait, kQueueBounds, seconds);
}

void SharedMetrics::RecordShed(std::string_view reason) {
    Add(layout_.shed + IndexOf(kShedReasons, reason, std::size(kShedReasons) - 1));
}

void SharedMetrics::RecordStore(std::string_view backend, std::string_view op, bool ok,
                                double seconds) {
    const std::size_t b = IndexOf(kBackends, backend, std::size(kBackends) - 1);
    const std::size_t o = IndexOf(kOps, op, std::size(kOps) - 1);
    Add(layout_.store_ops + (b * std::size(kOps) + o) * std::size(kResults) + (ok ? 0 : 1));
    Observe(layout_.store_duration + (b * std::size(kOps) + o) * HistogramCells(kStoreBounds),
            kStoreBounds, seconds);
}

void SharedMetrics::RecordLegacyGet() {
    Add(layout_.legacy_get);
}

void SharedMetrics::AddInflight(int delta) {
    AddGauge(kInflight, delta);
}

void SharedMetrics::AddBusyWorkers(int delta) {
    AddGauge(kBusy, delta);
}

void SharedMetrics::SetWorkers(int count) {
    region_->Word(own_, kWorkers)
        .store(static_cast<std::uint64_t>(static_cast<std::int64_t>(count)));
}

void SharedMetrics::Add(std::size_t cell, std::uint64_t n) {
    region_->Cell(own_, cell).fetch_add(n, std::memory_order_relaxed);
}

void SharedMetrics::AddGauge(SlotWord word, int delta) {
    region_->Word(own_, word)
        .fetch_add(static_cast<std::uint64_t>(static_cast<std::int64_t>(delta)),
                   std::memory_order_relaxed);
}

template <std::size_t N>
void SharedMetrics::Observe(std::size_t cell, const Bound (&bounds)[N], double seconds) {
    std::size_t bucket = 0;
    while (bucket < N && !(seconds <= bounds[bucket].seconds)) ++bucket;
    Add(cell + bucket);
    Add(cell + N + 1, Nanos(seconds));
}

std::string SharedMetrics::Render() const {
    const Layout& l = layout_;
    // Counters: the sum over every slot ever used. Gauges: over the live ones.
    std::vector<std::uint64_t> c(l.cells, 0);
    std::int64_t inflight = 0, busy = 0, workers = 0, processes = 0;
    std::uint64_t starts = 0, cpu_ticks = 0, rss = 0, fds = 0, youngest_ns = 0;
    for (std::size_t s = 0; s < region_->slot_count(); ++s) {
        if (region_->Word(s, kPid).load() == 0) continue;
        for (std::size_t i = 0; i < l.cells; ++i)
            c[i] += region_->Cell(s, i).load(std::memory_order_relaxed);
        starts += region_->Word(s, kStarts).load();
        cpu_ticks += region_->Word(s, kCpuRetiredTicks).load();
        std::atomic_ref<std::uint64_t> seen = region_->Word(s, kCpuSeenTicks);
        if (!region_->Live(s)) {
            cpu_ticks += seen.load();
            continue;
        }
        ++processes;
        inflight += static_cast<std::int64_t>(region_->Word(s, kInflight).load());
        busy += static_cast<std::int64_t>(region_->Word(s, kBusy).load());
        workers += static_cast<std::int64_t>(region_->Word(s, kWorkers).load());
        youngest_ns = std::max(youngest_ns, region_->Word(s, kStartUnixNs).load());
        std::uint64_t ticks = seen.load();
        if (auto stats = ReadProcessStats(region_->Word(s, kPid).load())) {
            // Remember the highest value seen, for when this process is gone.
            while (ticks < stats->cpu_ticks &&
                   !seen.compare_exchange_weak(ticks, stats->cpu_ticks)) {
            }
            ticks = std::max(ticks, stats->cpu_ticks);
            rss += stats->rss_bytes;
            fds += stats->open_fds;
        }
        cpu_ticks += ticks;
    }

    Exposition out;
    const std::size_t methods = std::size(kMethods);

    out.Family("hashd_requests_total", "counter",
               "Requests answered by the pool, by route, method and HTTP status.");
    for (std::size_t r = 0; r < l.routes.size(); ++r) {
        for (std::size_t m = 0; m < methods; ++m) {
            const std::uint64_t* row = &c[l.requests + (r * methods + m) * kStatusSlots];
            if (!l.declared[r * methods + m] &&
                std::all_of(row, row + kStatusSlots, [](std::uint64_t v) { return v == 0; }))
                continue;
            const std::string labels = "route=\"" + std::string(l.routes[r]) + "\",method=\"" +
                                       std::string(kMethods[m]) + "\",status=\"";
            for (std::size_t s = 0; s < kStatusSlots; ++s) {
                const bool is_other = s == std::size(kStatuses);
                // 500 and 503 are always present (as 0) for every route the router serves
                // (and any other that had traffic), so that rate() and increase() see the
                // first server error instead of a series that appears from nothing: a
                // series' first sample is not an increase to Prometheus.
                const bool seeded =
                    !is_other && (kStatuses[s].code == 500 || kStatuses[s].code == 503);
                if (row[s] == 0 && !seeded) continue;
                out.Sample("hashd_requests_total",
                           labels + (is_other ? "other" : std::to_string(kStatuses[s].code)) + "\"",
                           row[s]);
            }
        }
    }

    out.Family("hashd_request_duration_seconds", "histogram",
               "Time from the app picking a request up to its response, by route.");
    for (std::size_t r = 0; r < l.routes.size(); ++r) {
        const std::uint64_t* h = &c[l.request_duration + r * HistogramCells(kRequestBounds)];
        if (HistogramCount<std::size(kRequestBounds)>(h) == 0) continue;
        out.Histogram("hashd_request_duration_seconds",
                      "route=\"" + std::string(l.routes[r]) + "\"", kRequestBounds, h);
    }

    out.Family("hashd_hash_duration_seconds", "histogram",
               "Time to compute or verify one bcrypt hash, by cost.");
    for (std::size_t k = 0; k < kCosts; ++k) {
        const std::uint64_t* h = &c[l.hash_duration + k * HistogramCells(kHashBounds)];
        if (HistogramCount<std::size(kHashBounds)>(h) == 0) continue;
        out.Histogram("hashd_hash_duration_seconds",
                      "cost=\"" + std::to_string(kMinCost + static_cast<int>(k)) + "\"",
                      kHashBounds, h);
    }

    out.Family("hashd_queue_wait_seconds", "histogram",
               "Time a hashing request waited between its admission and a hashing thread "
               "starting it.");
    out.Histogram("hashd_queue_wait_seconds", "", kQueueBounds, &c[l.queue_wait]);

    out.Family("hashd_inflight_requests", "gauge", "Requests the pool's processes are serving.");
    out.Sample("hashd_inflight_requests", "", inflight);
    out.Family("hashd_workers_busy", "gauge", "Hashing threads of the pool running a request.");
    out.Sample("hashd_workers_busy", "", busy);
    out.Family("hashd_workers", "gauge", "Hashing threads of the pool (live processes x threads).");
    out.Sample("hashd_workers", "", workers);
    out.Family("hashd_processes", "gauge", "Live hashd-fcgi processes sharing this region.");
    out.Sample("hashd_processes", "", processes);
    out.Family("hashd_process_starts_total", "counter",
               "hashd-fcgi process starts on this VM since boot (restarts included).");
    out.Sample("hashd_process_starts_total", "", starts);

    out.Family("hashd_shed_requests_total", "counter",
               "Requests refused with 503 before any work, by reason.");
    for (std::size_t i = 0; i < std::size(kShedReasons); ++i) {
        const bool is_other = i + 1 == std::size(kShedReasons);
        if (is_other && c[l.shed + i] == 0) continue;
        out.Sample("hashd_shed_requests_total", "reason=\"" + std::string(kShedReasons[i]) + "\"",
                   c[l.shed + i]);
    }

    out.Family("hashd_store_operations_total", "counter",
               "Message store operations, by backend, operation and result (ok or error).");
    const std::size_t ops = std::size(kOps), results = std::size(kResults);
    for (std::size_t b = 0; b < std::size(kBackends); ++b) {
        const std::uint64_t* row = &c[l.store_ops + b * ops * results];
        if (b != store_backend_ &&
            std::all_of(row, row + ops * results, [](std::uint64_t v) { return v == 0; }))
            continue;
        // Every op x result of the configured backend (and any other in use), zeros
        // included: an error alert then sees the first error as an increase.
        for (std::size_t o = 0; o < ops; ++o) {
            const bool is_other = o + 1 == ops;
            if (is_other && row[o * results] + row[o * results + 1] == 0) continue;
            for (std::size_t res = 0; res < results; ++res)
                out.Sample("hashd_store_operations_total",
                           "backend=\"" + std::string(kBackends[b]) + "\",op=\"" +
                               std::string(kOps[o]) + "\",result=\"" + std::string(kResults[res]) +
                               "\"",
                           row[o * results + res]);
        }
    }

    out.Family("hashd_store_duration_seconds", "histogram",
               "Message store operation latency, by backend and operation.");
    for (std::size_t b = 0; b < std::size(kBackends); ++b) {
        for (std::size_t o = 0; o < ops; ++o) {
            const std::uint64_t* h =
                &c[l.store_duration + (b * ops + o) * HistogramCells(kStoreBounds)];
            if (HistogramCount<std::size(kStoreBounds)>(h) == 0) continue;
            out.Histogram(
                "hashd_store_duration_seconds",
                "backend=\"" + std::string(kBackends[b]) + "\",op=\"" + std::string(kOps[o]) + "\"",
                kStoreBounds, h);
        }
    }

    out.Family("hashd_legacy_get_requests_total", "counter",
               "Requests to the deprecated GET /gethash/<password>/ (clients still to migrate).");
    out.Sample("hashd_legacy_get_requests_total", "", c[l.legacy_get]);

    out.Family("process_cpu_seconds_total", "counter",
               "User and system CPU time of the pool's processes, past ones included.");
    out.SampleSeconds("process_cpu_seconds_total", "",
                      static_cast<double>(cpu_ticks) / static_cast<double>(sysconf(_SC_CLK_TCK)));
    out.Family("process_resident_memory_bytes", "gauge",
               "Resident memory of the live processes of the pool, summed.");
    out.Sample("process_resident_memory_bytes", "", rss);
    out.Family("process_open_fds", "gauge",
               "Open file descriptors of the live processes of the pool, summed.");
    out.Sample("process_open_fds", "", fds);
    out.Family("process_start_time_seconds", "gauge",
               "Start time of the youngest live process of the pool, in seconds since the epoch.");
    out.SampleSeconds("process_start_time_seconds", "", static_cast<double>(youngest_ns) / 1e9);

    out.Family("hashd_build_info", "gauge", "The build answering: version and commit; always 1.");
    out.Sample("hashd_build_info",
               "version=\"" + EscapeLabel(kVersion) + "\",commit=\"" + EscapeLabel(kCommit) + "\"",
               std::uint64_t{1});
    return out.Take();
}

}  // namespace metrics

Result<std::unique_ptr<Metrics>> Metrics::Open(const Config& config,
                                               std::span<const RouteKey> routes) {
    if (config.instance < 1 || config.instance > config.metrics_slots)
        return Error{ErrorKind::kInternal, "invalid_setting",
                     "HASHD_INSTANCE must be 1..HASHD_METRICS_SLOTS"};
    metrics::Layout layout = metrics::MakeLayout(routes);
    auto region = metrics::Region::Open(layout, config.runtime_dir + "/metrics.shm",
                                        config.instance, config.metrics_slots);
    if (!region.ok()) return region.error();
    return std::unique_ptr<Metrics>(std::make_unique<metrics::SharedMetrics>(
        std::move(layout), std::move(region).value(), metrics::StoreBackendIndex(config.store)));
}

}  // namespace hashd
