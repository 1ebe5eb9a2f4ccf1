#include "metrics/worker_metrics.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

namespace hashd {
namespace {

double UnixNow() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string Number(double value) {
    char text[64];
    std::snprintf(text, sizeof text, "%.17g", value);
    return text;
}

std::string BucketName(std::size_t i) {
    char bound[32];
    if (i < kProcessingBounds.size())
        std::snprintf(bound, sizeof bound, "%g", kProcessingBounds[i]);
    const std::string le = i < kProcessingBounds.size() ? bound : "+Inf";
    return "hashd_worker_processing_duration_seconds_bucket{le=\"" + le + "\"}";
}

}  // namespace

void WorkerCounters::Observe(double seconds) {
    std::size_t i = 0;
    while (i < kProcessingBounds.size() && seconds > kProcessingBounds[i]) ++i;
    ++buckets[i];
    duration_sum += seconds;
}

std::string WorkerMetricsPath(const Config& config) {
    return config.runtime_dir + "/hashd-worker.prom";
}

std::string FormatWorkerMetrics(const WorkerCounters& c, double heartbeat) {
    std::ostringstream out;
    out << "# HELP hashd_worker_processed_total MultiVAC data processed by hashd-worker.\n"
           "# TYPE hashd_worker_processed_total counter\n"
           "hashd_worker_processed_total "
        << c.processed
        << "\n# HELP hashd_worker_failed_total MultiVAC data whose processing failed (they stay "
           "queued and are retried).\n"
           "# TYPE hashd_worker_failed_total counter\n"
           "hashd_worker_failed_total "
        << c.failed
        << "\n# HELP hashd_worker_consecutive_failures Completions failed in a row since the "
           "last success (the worker backs off meanwhile).\n"
           "# TYPE hashd_worker_consecutive_failures gauge\n"
           "hashd_worker_consecutive_failures "
        << c.consecutive_failures
        << "\n# HELP hashd_worker_processing_duration_seconds Time to process one datum.\n"
           "# TYPE hashd_worker_processing_duration_seconds histogram\n";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < c.buckets.size(); ++i) {
        cumulative += c.buckets[i];
        out << BucketName(i) << " " << cumulative << "\n";
    }
    out << "hashd_worker_processing_duration_seconds_sum " << Number(c.duration_sum) << "\n"
        << "hashd_worker_processing_duration_seconds_count " << cumulative << "\n"
        << "# HELP hashd_worker_heartbeat_timestamp_seconds When hashd-worker last reported.\n"
           "# TYPE hashd_worker_heartbeat_timestamp_seconds gauge\n"
           "hashd_worker_heartbeat_timestamp_seconds "
        << Number(heartbeat) << "\n";
    return out.str();
}

WorkerCounters ParseWorkerMetrics(std::string_view text, double* heartbeat) {
    std::map<std::string, double, std::less<>> samples;
    std::istringstream in{std::string(text)};
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#') continue;
        const auto space = line.rfind(' ');
        if (space == std::string::npos) continue;
        samples[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
    }
    auto get = [&](const std::string& name) {
        auto it = samples.find(name);
        return it == samples.end() ? 0.0 : it->second;
    };
    WorkerCounters c;
    c.processed = static_cast<std::uint64_t>(get("hashd_worker_processed_total"));
    c.failed = static_cast<std::uint64_t>(get("hashd_worker_failed_total"));
    c.consecutive_failures = static_cast<std::uint64_t>(get("hashd_worker_consecutive_failures"));
    std::uint64_t below = 0;
    for (std::size_t i = 0; i < c.buckets.size(); ++i) {
        const auto cumulative = static_cast<std::uint64_t>(get(BucketName(i)));
        c.buckets[i] = cumulative >= below ? cumulative - below : 0;
        below = std::max(below, cumulative);
    }
    c.duration_sum = get("hashd_worker_processing_duration_seconds_sum");
    if (heartbeat != nullptr) *heartbeat = get("hashd_worker_heartbeat_timestamp_seconds");
    return c;
}

Status WriteFileAtomically(const std::string& path, std::string_view text) {
    const std::string temporary = path + ".tmp";
    {
        std::ofstream out(temporary, std::ios::trunc | std::ios::binary);
        out.write(text.data(), static_cast<std::streamsize>(text.size()));
        if (!out.flush())
            return Error{ErrorKind::kInternal, "write_failed", "cannot write " + temporary};
    }
    if (std::rename(temporary.c_str(), path.c_str()) != 0)
        return Error{ErrorKind::kInternal, "write_failed",
                     "cannot rename " + temporary + " to " + path};
    return Ok{};
}

std::string RenderQueueMetrics(const Config& config, const std::optional<QueueGauges>& queue) {
    std::string file;
    if (std::ifstream in(WorkerMetricsPath(config), std::ios::binary); in) {
        std::ostringstream content;
        content << in.rdbuf();
        file = content.str();
    }
    double heartbeat = 0;
    const WorkerCounters counters = ParseWorkerMetrics(file, &heartbeat);
    const double now = UnixNow();
    const bool up = heartbeat > 0 && now - heartbeat < kWorkerStaleAfter;

    std::string out = FormatWorkerMetrics(counters, heartbeat);
    out += "# HELP hashd_worker_up 1 while hashd-worker reports in (within " +
           Number(kWorkerStaleAfter) + " s).\n# TYPE hashd_worker_up gauge\nhashd_worker_up " +
           (up ? "1" : "0") + "\n";
    if (!queue) return out;
    const QueueGauges& s = *queue;
    const double age = s.oldest_enqueued_at ? std::max(0.0, now - *s.oldest_enqueued_at) : 0.0;
    out +=
        "# HELP hashd_multivac_queue_depth MultiVAC data queued and not yet processed.\n"
        "# TYPE hashd_multivac_queue_depth gauge\nhashd_multivac_queue_depth " +
        std::to_string(s.depth) +
        "\n# HELP hashd_multivac_queue_oldest_age_seconds Age of the oldest queued datum (0 "
        "when none).\n# TYPE hashd_multivac_queue_oldest_age_seconds gauge\n"
        "hashd_multivac_queue_oldest_age_seconds " +
        Number(age) + "\n";
    return out;
}

}  // namespace hashd
