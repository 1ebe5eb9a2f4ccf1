#pragma once
// /readyz's view of the message store, cached.
//
// Why a cache: /readyz is reachable by anyone who can reach nginx, and each uncached probe
// made a store round trip on a worker thread. A flood of probes would then load the shared
// Redis/PostgreSQL of every VM and, with a hung store, hold every worker for the store
// timeout. With the cache a process asks the store at most once per max_age whatever the
// probe rate, and while one thread asks, the others answer from the previous result instead
// of queueing behind it. max_age is far below any health checker's interval (GCP: 5 s or
// more, HAProxy: 2 s), so readiness still flips to 503 within one check of the store going
// down. Draining is not cached: it is an atomic read (see HandleReadyz).

#include <chrono>
#include <functional>
#include <mutex>

#include "core/result.h"

namespace hashd {

class ReadinessCache {
  public:
    using Clock = std::chrono::steady_clock;

    // max_age 0 asks the store on every call (unit tests). `now` is the clock (a test's fake
    // one, or the steady clock).
    explicit ReadinessCache(Clock::duration max_age,
                            std::function<Clock::time_point()> now = Clock::now);

    ReadinessCache(const ReadinessCache&) = delete;
    ReadinessCache& operator=(const ReadinessCache&) = delete;

    // The result of `check` (the store's Check(), called through TimedStore so that it is
    // measured and passes the accept turn on: health_handlers.cc), taken at most max_age ago.
    // Thread-safe. Only the first call and the one thread that refreshes a stale result call
    // `check`; calls meanwhile get the stale result.
    Status StoreStatus(const std::function<Status()>& check);

  private:
    const Clock::duration max_age_;
    const std::function<Clock::time_point()> now_;

    std::mutex mutex_;  // guards the members below
    bool has_result_ = false;
    bool refreshing_ = false;
    Clock::time_point checked_at_{};
    Status last_ = Ok{};
};

}  // namespace hashd
