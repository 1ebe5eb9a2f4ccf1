#pragma once
// Admission by expected wait: the pure logic, no threads and no clock of its own (the caller
// passes `now`), so that tests drive it deterministically. The design and its trade-offs are
// described at the top of admission.cc; hash_pool.h puts it in front of the hashing threads.

#include <chrono>
#include <cstdint>
#include <vector>

namespace hashd {

using SteadyClock = std::chrono::steady_clock;

// How long one bcrypt computation at a given cost takes on this machine now, learnt from the
// computations this process timed. bcrypt's work doubles with each cost step, so a cost never
// seen yet is estimated from the time per 2^cost "unit" of the costs that were.
class HashTimeModel {
  public:
    // `seconds_per_unit`: the first guess of seconds per 2^cost, used until a hash was timed
    // (HashTimeModel::Calibrate measures one on this machine).
    explicit HashTimeModel(double seconds_per_unit);

    // Expected seconds of one computation at `cost` (clamped to 4..31). Always > 0.
    double Estimate(int cost) const;

    // Folds one timed computation in: an exponentially weighted moving average per cost
    // (weight kWeight for the newest sample) and one over all costs per unit. Ignores costs
    // outside 4..31 and non-positive times.
    void Record(int cost, double seconds);

    // Times a few bcrypt computations at a low cost and returns seconds per 2^cost unit.
    static double Calibrate();

    static constexpr double kWeight = 0.2;

  private:
    static constexpr int kMinCost = 4, kMaxCost = 31;
    double per_unit_;
    double per_cost_[kMaxCost + 1] = {};  // 0: no sample yet
};

// The queue of admitted hashing jobs, in expected seconds of work rather than in a count.
// Not thread-safe: the owner serializes calls (HashPool holds a mutex around it).
class AdmissionQueue {
  public:
    using Duration = std::chrono::microseconds;

    // `workers`: threads that compute hashes (>= 1); `deadline`: the longest expected wait a
    // job may be admitted with; zero admits everything (no shedding).
    AdmissionQueue(int workers, std::chrono::milliseconds deadline, HashTimeModel model);

    struct Decision {
        bool admitted = false;
        Duration expected_wait{0};  // the work ahead of the job, spread over the workers
        Duration estimate{0};       // the job's own expected run time; hand it back to Start()
        Duration retry_after{0};    // refused: when a job like it would fit, if nothing else came
    };

    // Decides on a job of bcrypt `cost` arriving at `now`. Admitted: the job counts as work
    // ahead of every later offer until Start(). Refused: nothing changes.
    Decision Offer(int cost, SteadyClock::time_point now);

    // An admitted job (its Decision::estimate) leaves the queue and runs on `worker`
    // (0..workers-1), which must be idle.
    void Start(int worker, Duration estimate, SteadyClock::time_point now);

    // `worker`'s job, of bcrypt `cost`, ended at `now`: its run time teaches the model.
    void Finish(int worker, int cost, SteadyClock::time_point now);

    // Admitted jobs not started yet.
    int queued() const { return queued_jobs_; }

    // The wait a job offered at `now` would be told (see Offer).
    Duration ExpectedWait(SteadyClock::time_point now) const;

    const HashTimeModel& model() const { return model_; }

  private:
    struct Running {
        bool busy = false;
        Duration estimate{0};
        SteadyClock::time_point since{};
    };

    Duration deadline_;
    HashTimeModel model_;
    std::vector<Running> running_;
    Duration queued_work_{0};  // sum of the estimates of admitted jobs not started yet
    int queued_jobs_ = 0;
};

}  // namespace hashd
