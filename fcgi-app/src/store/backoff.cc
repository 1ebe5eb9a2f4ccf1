#include "store/backoff.h"

#include <algorithm>

namespace hashd {

void Backoff::Failed(Clock::time_point now) {
    delay_ = delay_.count() == 0 ? kInitial : std::min(delay_ * 2, kMax);
    // xorshift64 seeded with the clock: cheap jitter that needs no shared random engine, and
    // differs between connections that failed at different instants.
    jitter_state_ ^= static_cast<std::uint64_t>(now.time_since_epoch().count());
    if (jitter_state_ == 0) jitter_state_ = 1;
    jitter_state_ ^= jitter_state_ << 13;
    jitter_state_ ^= jitter_state_ >> 7;
    jitter_state_ ^= jitter_state_ << 17;
    const auto jitter = std::chrono::milliseconds(
        static_cast<long>(jitter_state_ % static_cast<std::uint64_t>(delay_.count() / 4 + 1)));
    retry_at_ = now + delay_ + jitter;
}

void Backoff::Succeeded() {
    delay_ = std::chrono::milliseconds{0};
    retry_at_ = Clock::time_point{};
}

int Backoff::RetryAfterSeconds(Clock::time_point now) const {
    const auto left = std::chrono::ceil<std::chrono::seconds>(retry_at_ - now).count();
    return static_cast<int>(std::max<long>(1, left));
}

}  // namespace hashd
