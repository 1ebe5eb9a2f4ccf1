#pragma once
// Reconnect backoff of one connection to a network store.
//
// When a store is down, every request would otherwise pay a full connect timeout and hammer
// the server the moment it comes back (P processes x T threads x VMs of them). Instead each
// connection remembers when it last failed: until the backoff delay has passed, requests get
// 503 at once (with Retry-After saying how long is left) and no connect is attempted. Each
// consecutive failure doubles the delay, from kInitial up to kMax, with up to 25% jitter so
// that connections do not retry in lock-step; one success resets it. A recovering store is thus
// noticed within kMax plus a little, with no restart.
//
// Not thread-safe: each instance belongs to one connection, used by one thread at a time.

#include <chrono>
#include <cstdint>

namespace hashd {

class Backoff {
  public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::chrono::milliseconds kInitial{100};
    static constexpr std::chrono::milliseconds kMax{2000};

    // True when a connect may be attempted at `now` (no failure pending).
    bool Ready(Clock::time_point now) const { return now >= retry_at_; }

    // Records a failure at `now`; the next attempt waits for the (grown) delay.
    void Failed(Clock::time_point now);

    // Records a success: the next failure starts from kInitial again.
    void Succeeded();

    // Whole seconds (at least 1) until a retry is allowed: the Retry-After of a 503.
    int RetryAfterSeconds(Clock::time_point now) const;

  private:
    std::chrono::milliseconds delay_{0};
    Clock::time_point retry_at_{};
    std::uint64_t jitter_state_ = 0x9e3779b97f4a7c15ULL;
};

}  // namespace hashd
