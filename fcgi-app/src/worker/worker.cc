#include "worker/worker.h"

#include <fstream>
#include <sstream>
#include <thread>

namespace hashd {
namespace {

using Clock = std::chrono::steady_clock;

double UnixNow() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string Milliseconds(double seconds) {
    return std::to_string(static_cast<long long>(seconds * 1000.0));
}

}  // namespace

Worker::Worker(DataQueue& queue, const Logger& logger, std::string backend,
               std::string metrics_path)
    : queue_(queue),
      logger_(logger),
      backend_(std::move(backend)),
      metrics_path_(std::move(metrics_path)) {
    if (std::ifstream in(metrics_path_, std::ios::binary); in) {
        std::ostringstream text;
        text << in.rdbuf();
        counters_ = ParseWorkerMetrics(text.str(), nullptr);
    }
}

void Worker::StoreFailed(std::string_view what, const Error& error) {
    // Once per outage: a store that stays down must not flood the journal.
    if (!store_down_)
        logger_.Log(LogLevel::kWarning, "the store is unavailable; retrying",
                    {{"STORE_BACKEND", backend_},
                     {"OPERATION", std::string(what)},
                     {"ERROR", error.code},
                     {"ERROR_DETAIL", error.detail}});
    store_down_ = true;
    recover_now_ = true;
}

void Worker::StoreBack() {
    if (store_down_)
        logger_.Log(LogLevel::kInfo, "the store is available again", {{"STORE_BACKEND", backend_}});
    store_down_ = false;
}

void Worker::Process(const Datum& datum) {
    const auto start = Clock::now();
    auto done = queue_.Complete(datum);
    const double took = std::chrono::duration<double>(Clock::now() - start).count();
    if (!done.ok()) {
        ++counters_.failed;
        logger_.Log(LogLevel::kWarning, "datum not processed; it stays queued and will be retried",
                    {{"DATUM_ID", datum.id},
                     {"STORE_BACKEND", backend_},
                     {"ERROR", done.error().code},
                     {"ERROR_DETAIL", done.error().detail}});
        StoreFailed("complete", done.error());
        return;
    }
    StoreBack();
    ++counters_.processed;
    counters_.Observe(took);
    logger_.Log(LogLevel::kInfo, "datum processed",
                {{"DATUM_ID", datum.id},
                 {"STORE_BACKEND", backend_},
                 {"QUEUED_MS", Milliseconds(std::max(0.0, UnixNow() - datum.enqueued_at))},
                 {"DURATION_US", std::to_string(static_cast<long long>(took * 1e6))}});
}

void Worker::SaveMetrics() {
    if (auto saved = WriteFileAtomically(metrics_path_, FormatWorkerMetrics(counters_, UnixNow()));
        !saved.ok())
        logger_.Log(LogLevel::kWarning, "cannot write the worker metrics",
                    {{"ERROR", saved.error().message}});
}

void Worker::Run(const std::atomic<bool>& stop, const std::function<void()>& alive) {
    auto last_recover = Clock::time_point{};
    auto last_metrics = Clock::time_point{};
    while (!stop.load()) {
        alive();
        const auto now = Clock::now();
        if (now - last_metrics >= kMetricsInterval) {
            SaveMetrics();
            last_metrics = now;
        }
        if (recover_now_ || now - last_recover >= kRecoverInterval) {
            if (auto recovered = queue_.Recover(); !recovered.ok()) {
                StoreFailed("recover", recovered.error());
                std::this_thread::sleep_for(kRetryInterval);
                continue;
            }
            last_recover = now;
            recover_now_ = false;
        }
        auto claimed = queue_.Claim(kClaimWait);
        if (!claimed.ok()) {
            StoreFailed("claim", claimed.error());
            std::this_thread::sleep_for(kRetryInterval);
            continue;
        }
        StoreBack();
        if (claimed.value()) Process(*claimed.value());
    }
    SaveMetrics();
}

}  // namespace hashd
