#include "api/readiness.h"

#include <utility>

namespace hashd {

ReadinessCache::ReadinessCache(Clock::duration max_age, std::function<Clock::time_point()> now)
    : max_age_(max_age), now_(std::move(now)) {}

Status ReadinessCache::StoreStatus(const std::function<Status()>& check) {
    {
        std::lock_guard lock(mutex_);
        if (has_result_ && (refreshing_ || now_() - checked_at_ < max_age_)) return last_;
        refreshing_ = true;
    }
    // Outside the lock: a hung store must not block the probes that can use the old result.
    Status status = check();
    std::lock_guard lock(mutex_);
    last_ = status;
    checked_at_ = now_();
    has_result_ = true;
    refreshing_ = false;
    return status;
}

}  // namespace hashd
