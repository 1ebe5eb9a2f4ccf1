#pragma once
// The hashing threads: W threads that take admitted jobs, oldest first, from a queue bounded
// by expected wait (admission.h, whose .cc explains the policy). Accepting threads offer each
// hashing request here and answer the refused ones themselves at once.
//
// Batching: a thread that takes the oldest job also takes the next queued jobs of the same
// cost, up to the engine's lanes (HASHD_BCRYPT_LANES), and computes their bcrypt together
// (hashing/bcrypt_engine.h): hashes and verifications alike, since both are one bcrypt
// computation. A job found alone runs alone, so at low load a request waits for one hash, not
// for a batch to fill; nothing ever waits for company. Jobs of the same cost further back
// overtake jobs of other costs ahead of them by at most one batch's time.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"
#include "hashing/admission.h"
#include "hashing/bcrypt_engine.h"
#include "metrics/metrics.h"

namespace hashd {

// One admitted request, run on a hashing thread in two steps around its bcrypt computation.
class HashJob {
  public:
    virtual ~HashJob() = default;
    // The bcrypt input to compute, or nullopt when the job has answered already (invalid
    // input found now, or the client has gone away). The views stay valid until Complete().
    virtual std::optional<BcryptInput> Prepare() = 0;
    // Answers with the computed 60-character string (or its error), `seconds` after the batch
    // it was computed in started. Called only after Prepare() returned an input.
    virtual void Complete(const Result<std::string>& computed, double seconds) = 0;
};

class HashPool {
  public:
    // Starts `workers` threads at once. `deadline` as in AdmissionQueue; `seconds_per_unit`
    // seeds the hash-time model (HashTimeModel::Calibrate(compute)); `batching` says how many jobs
    // a thread takes at once and how long batches take (Batching::Measure); `compute` computes a
    // batch.
    HashPool(int workers, std::chrono::milliseconds deadline, double seconds_per_unit,
             Batching batching, BatchCompute compute, Metrics& metrics);
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
    // Moves the oldest job and up to lanes - 1 later ones of its cost out of queue_.
    std::vector<Queued> TakeBatch();

    Metrics& metrics_;
    const int lanes_;
    const BatchCompute compute_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    AdmissionQueue admission_;                         // guarded by mutex_
    std::deque<Queued> queue_;                         // guarded by mutex_
    std::vector<SteadyClock::time_point> busy_since_;  // guarded by mutex_; epoch: idle
    bool draining_ = false;                            // guarded by mutex_
    std::vector<std::jthread> threads_;  // last: started after every member above exists
};

}  // namespace hashd
