#pragma once
// The hashing threads: W threads that take admitted jobs, oldest first, from a queue bounded
// by expected wait (admission.h, whose .cc explains the policy). Accepting threads offer each
// hashing request here and answer the refused ones themselves at once.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "hashing/admission.h"
#include "metrics/metrics.h"

namespace hashd {

// One admitted request: Run() computes and answers it, on a hashing thread.
class HashJob {
  public:
    virtual ~HashJob() = default;
    virtual void Run() = 0;
};

class HashPool {
  public:
    // Starts `workers` threads at once. `deadline` as in AdmissionQueue; `seconds_per_unit`
    // seeds the hash-time model (HashTimeModel::Calibrate()).
    HashPool(int workers, std::chrono::milliseconds deadline, double seconds_per_unit,
             Metrics& metrics);
    // Drains (see Drain) and joins.
    ~HashPool();
    HashPool(const HashPool&) = delete;
    HashPool& operator=(const HashPool&) = delete;

    // Offers `job`, which will compute one bcrypt hash at `cost`. Admitted: the pool takes the
    // job (it is moved from) and runs it on a hashing thread. Refused (expected wait past the
    // deadline, or the pool is draining): `job` is left with the caller, who answers 503
    // with Decision::retry_after. Never blocks on a hash.
    AdmissionQueue::Decision Offer(int cost, std::unique_ptr<HashJob>& job);

    // Refuses new offers, lets the threads finish every admitted job, and joins them.
    // Idempotent.
    void Drain();

    // True when every hashing thread has been running one job for longer than `limit`.
    bool Stuck(std::chrono::seconds limit) const;

  private:
    struct Queued {
        std::unique_ptr<HashJob> job;
        int cost;
        AdmissionQueue::Duration estimate;
        double variance;
        SteadyClock::time_point admitted;
    };
    void Work(int worker);

    Metrics& metrics_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    AdmissionQueue admission_;                         // guarded by mutex_
    std::deque<Queued> queue_;                         // guarded by mutex_
    std::vector<SteadyClock::time_point> busy_since_;  // guarded by mutex_; epoch: idle
    bool draining_ = false;                            // guarded by mutex_
    std::vector<std::jthread> threads_;  // last: started after every member above exists
};

}  // namespace hashd
