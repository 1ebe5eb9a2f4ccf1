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
               std::string metrics_path, Sleep sleep)
    : queue_(queue),
      logger_(logger),
      backend_(std::move(backend)),
      metrics_path_(std::move(metrics_path)),
      sleep_(std::move(sleep)) {
    if (std::ifstream in(metrics_path_, std::ios::binary); in) {
        std::ostringstream text;
        text << in.rdbuf();
        counters_ = ParseWorkerMetrics(text.str(), nullptr);
    }
    counters_.consecutive_failures = 0;  // a streak is this process's, not its predecessor's
}

void Worker::Wait(std::chrono::milliseconds delay) {
    if (sleep_) return sleep_(delay);
    // In slices, so that a stop request is honoured within kClaimWait however long the wait.
    const auto until = Clock::now() + delay;
    while ((stop_ == nullptr || !stop_->load()) && Clock::now() < until)
        std::this_thread::sleep_for(std::min<Clock::duration>(kClaimWait, until - Clock::now()));
}

void Worker::CompletionFailed(const Datum& datum, const Error& error) {
    ++counters_.failed;
    ++counters_.consecutive_failures;
    failure_backoff_ = failure_backoff_.count() == 0
                           ? kRetryInterval
                           : std::min(failure_backoff_ * 2, kMaxFailureBackoff);
    const auto now = Clock::now();
    if (counters_.consecutive_failures == 1 || now - failure_logged_at_ >= kFailureLogInterval) {
        logger_.Log(LogLevel::kWarning, "datum not processed; it stays queued and will be retried",
                    {{"DATUM_ID", datum.id},
                     {"STORE_BACKEND", backend_},
                     {"ERROR", error.code},
                     {"ERROR_DETAIL", error.detail},
                     {"CONSECUTIVE_FAILURES", std::to_string(counters_.consecutive_failures)},
                     {"FAILURES_NOT_LOGGED", std::to_string(failures_unlogged_)},
                     {"RETRY_IN_MS", std::to_string(failure_backoff_.count())}});
        failure_logged_at_ = now;
        failures_unlogged_ = 0;
    } else {
        ++failures_unlogged_;
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
        CompletionFailed(datum, done.error());
        // Redis: the datum waits in this consumer's processing list; put it back next turn.
        recover_now_ = true;
        return;
    }
    if (counters_.consecutive_failures > 0)
        logger_.Log(LogLevel::kInfo, "data are processed again",
                    {{"STORE_BACKEND", backend_},
                     {"FAILURES", std::to_string(counters_.consecutive_failures)}});
    counters_.consecutive_failures = 0;
    failure_backoff_ = std::chrono::milliseconds{0};
    failures_unlogged_ = 0;
    StoreBack();
    ++counters_.processed;
    counters_.Observe(took);
    logger_.Log(LogLevel::kInfo, "datum processed",
                {{"DATUM_ID", datum.id},
                 {"STORE_BACKEND", backend_},
                 {"QUEUED_MS", Milliseconds(std::max(0.0, UnixNow() - datum.enqueued_at))},
                 {"DURATION_US", std::to_string(static_cast<long long>(took * 1e6))}});
}

void Worker::Prune() {
    auto pruned = queue_.PruneProcessed();
    // Not a reason to stop consuming: the next turn tries again.
    if (!pruned.ok()) return StoreFailed("prune", pruned.error());
    if (pruned.value() > 0 && pruned_ == 0)
        logger_.Log(LogLevel::kInfo, "deleting the processed data an older version kept",
                    {{"STORE_BACKEND", backend_}});
    pruned_ += pruned.value();
    if (pruned.value() == 0 && pruned_ > 0) {
        logger_.Log(LogLevel::kInfo, "deleted the processed data an older version kept",
                    {{"STORE_BACKEND", backend_}, {"PRUNED", std::to_string(pruned_)}});
        pruned_ = 0;
    }
}

void Worker::SaveMetrics() {
    if (auto saved = WriteFileAtomically(metrics_path_, FormatWorkerMetrics(counters_, UnixNow()));
        !saved.ok())
        logger_.Log(LogLevel::kWarning, "cannot write the worker metrics",
                    {{"ERROR", saved.error().message}});
}

void Worker::Run(const std::atomic<bool>& stop, const std::function<void()>& alive) {
    stop_ = &stop;
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
                Wait(kRetryInterval);
                continue;
            }
            last_recover = now;
            recover_now_ = false;
            Prune();
        }
        auto claimed = queue_.Claim(kClaimWait);
        if (!claimed.ok()) {
            StoreFailed("claim", claimed.error());
            Wait(kRetryInterval);
            continue;
        }
        // A claim that works says nothing of a completion that fails: only an empty claim or a
        // completed datum ends an outage (else each turn of a failure loop would log twice).
        if (!claimed.value()) {
            StoreBack();
            continue;
        }
        Process(*claimed.value());
        if (failure_backoff_.count() > 0) Wait(failure_backoff_);
    }
    SaveMetrics();
}

}  // namespace hashd
