#pragma once
// Per-client budgets of hashing work, cost-weighted (issue 21, finding 4).
//
// Why work, not requests. nginx limits each address to 10 hashing requests a second, sized for
// cost 12; a client asking for cost 14 (or verifying a $2b$14$ hash) gets four times the CPU
// per request: about nine core-seconds a second per address. So the app charges each hashing
// request its work, in units of one cost-12 hash (2^(cost-12): cost 14 is 4 units, cost 10 a
// quarter), to a token bucket per client: `rate` units a second, at most `burst` banked. A
// request whose work does not fit is refused at once with 429 and Retry-After (when it would
// fit), before any hashing; a request refused later by admission (503) is refunded.
//
// The client is the API token's client id when the request is authenticated, else the
// address nginx passes (REMOTE_ADDR, already the real client behind a trusted LB). The budget
// is per process: with nginx's least_conn a client's requests spread over the P processes,
// so a VM grants about P times it; the default (10 units/s, burst 20) equals nginx's
// per-address limit at cost 12, so cost-12 clients see no change and the budget binds only on
// dearer work. Memory is bounded: at most kMaxClients buckets; full (idle) buckets are
// dropped first, and when every bucket is in use the least recently touched eighth.
//
// Thread-safe (one mutex: a map lookup per hashing request, next to a bcrypt hash).

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace hashd {

class ClientBudget {
  public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::size_t kMaxClients = 10000;

    // `rate` units (cost-12 hashes) per second and `burst` units banked per client; rate 0
    // switches budgets off (every Charge succeeds).
    ClientBudget(double rate, double burst);

    // The work of one bcrypt computation at `cost`, in cost-12 hashes.
    static double Units(int cost);

    struct Decision {
        bool allowed = true;
        std::chrono::milliseconds retry_after{0};  // refused: when it would fit, at this rate
    };

    // Takes `units` from `client`'s bucket at `now`, or refuses and takes nothing.
    Decision Charge(std::string_view client, double units, Clock::time_point now);

    // Gives back what a Charge took when the work was not done after all.
    void Refund(std::string_view client, double units);

  private:
    struct Bucket {
        double tokens = 0;
        Clock::time_point updated{};
    };
    void Refill(Bucket& bucket, Clock::time_point now) const;
    void Evict(Clock::time_point now);

    const double rate_;
    const double burst_;
    std::mutex mutex_;  // guards buckets_
    std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace hashd
