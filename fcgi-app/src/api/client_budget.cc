#include "api/client_budget.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace hashd {

ClientBudget::ClientBudget(double rate, double burst) : rate_(rate), burst_(burst) {}

double ClientBudget::Units(int cost) {
    return std::ldexp(1.0, cost - 12);
}

void ClientBudget::Refill(Bucket& bucket, Clock::time_point now) const {
    const double seconds = std::chrono::duration<double>(now - bucket.updated).count();
    if (seconds > 0) bucket.tokens = std::min(burst_, bucket.tokens + seconds * rate_);
    bucket.updated = std::max(bucket.updated, now);
}

void ClientBudget::Evict(Clock::time_point now) {
    // Idle long enough to be full again: forgetting it changes nothing.
    std::erase_if(buckets_, [&](const auto& entry) {
        const double seconds = std::chrono::duration<double>(now - entry.second.updated).count();
        return entry.second.tokens + std::max(0.0, seconds) * rate_ >= burst_;
    });
    if (buckets_.size() < kMaxClients) return;
    // Every bucket in use: drop the least recently touched eighth at once, so that the O(n)
    // of finding them is paid once per kMaxClients / 8 new clients, not per request.
    std::vector<Clock::time_point> times;
    times.reserve(buckets_.size());
    for (const auto& entry : buckets_) times.push_back(entry.second.updated);
    const auto cut = times.begin() + static_cast<std::ptrdiff_t>(times.size() / 8);
    std::nth_element(times.begin(), cut, times.end());
    const Clock::time_point before = *cut;
    std::erase_if(buckets_, [&](const auto& entry) { return entry.second.updated <= before; });
}

ClientBudget::Decision ClientBudget::Charge(std::string_view client, double units,
                                            Clock::time_point now) {
    if (rate_ <= 0) return {};
    std::lock_guard lock(mutex_);
    auto found = buckets_.find(std::string(client));
    if (found == buckets_.end()) {
        if (buckets_.size() >= kMaxClients) Evict(now);
        found = buckets_.emplace(std::string(client), Bucket{burst_, now}).first;
    }
    Bucket& bucket = found->second;
    Refill(bucket, now);
    // Work larger than the burst runs from a full bucket (else it never could) and leaves a debt.
    if (bucket.tokens >= units || bucket.tokens >= burst_) {
        bucket.tokens -= units;
        return {};
    }
    const double wait = (std::min(units, burst_) - bucket.tokens) / rate_;
    return {false,
            std::chrono::milliseconds(static_cast<long long>(std::ceil(wait * 1000 - 1e-6)))};
}

void ClientBudget::Refund(std::string_view client, double units) {
    if (rate_ <= 0) return;
    std::lock_guard lock(mutex_);
    if (auto found = buckets_.find(std::string(client)); found != buckets_.end())
        found->second.tokens = std::min(burst_, found->second.tokens + units);
}

}  // namespace hashd
