#pragma once
// Admission by expected wait: the pure logic, no threads and no clock of its own (the caller
// passes `now`), so that tests drive it deterministically. The design and its trade-offs are
// described at the top of admission.cc; hash_pool.h puts it in front of the hashing threads.

#include <chrono>
#include <cstdint>
#include <vector>

#include "hashing/bcrypt_engine.h"

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

    // The variance (s^2) of one computation at `cost`: the moving average of the squared
    // relative deviation of every timed computation from its cost's estimate, times
    // Estimate^2. 0 until a computation was timed.
    double Variance(int cost) const;

    // Folds one timed computation in: an exponentially weighted moving average per cost
    // (weight kWeight for the newest sample), one over all costs per unit, and one of the
    // squared relative deviation. Ignores costs outside 4..31 and non-positive times.
    void Record(int cost, double seconds);

    // Times a few lone bcrypt computations at a low cost with `compute` (the engine the
    // hashing threads use: a lone job on the interleaved engine is not a libxcrypt hash) in
    // CPU time (so that other work on the machine cannot inflate it) and returns seconds per
    // 2^cost unit; 1e-4 if no computation succeeded.
    static double Calibrate(const BatchCompute& compute);

    static constexpr double kWeight = 0.2;

  private:
    static constexpr int kMinCost = 4, kMaxCost = 31;
    double per_unit_;
    double per_cost_[kMaxCost + 1] = {};  // 0: no sample yet
    double relative_variance_ = 0;
};

// How a hashing thread batches: up to `lanes` jobs of one cost computed together, a batch of
// n taking `batch_time[n-1]` times as long as one job alone (1 for n = 1; measured at start-up
// by MeasureBatchTimes). The default is one job at a time.
struct Batching {
    int lanes = 1;
    std::vector<double> batch_time{1.0};

    // The relative time of a batch of n (1..lanes; clamped).
    double Time(int n) const;
    // What one queued job adds to the work ahead when the jobs run `lanes` at a time.
    double Share() const { return Time(lanes) / lanes; }

    // Times batches of 1..lanes at a low cost with `compute` (which must compute its n
    // inputs together), in CPU time like HashTimeModel::Calibrate; each factor is clamped to
    // 1..n so that a noisy measurement can neither promise more than n-fold nor less than no
    // gain.
    static Batching Measure(int lanes);
};

// The queue of admitted hashing jobs, in expected seconds of work rather than in a count.
// Not thread-safe: the owner serializes calls (HashPool holds a mutex around it).
class AdmissionQueue {
  public:
    using Duration = std::chrono::microseconds;

    // `workers`: threads that compute hashes (>= 1); `deadline`: the longest wait a job may
    // be admitted with (expected wait plus kSpreads standard deviations of it); zero admits
    // everything (no shedding). `batching`: how the threads group queued jobs, so that a queued
    // job counts as its share of a batch (Batching::Share) and a running batch as its time.
    AdmissionQueue(int workers, std::chrono::milliseconds deadline, HashTimeModel model,
                   Batching batching = {});

    // How many standard deviations of the wait ahead are added to its mean before comparing
    // with the deadline: ~98 % of admitted jobs then start within it.
    static constexpr double kSpreads = 2.0;

    struct Decision {
        bool admitted = false;
        Duration expected_wait{0};  // the work ahead of the job, spread over the workers
        Duration wait_bound{0};     // expected_wait + kSpreads standard deviations: vs deadline
        Duration estimate{0};       // the job's own expected run time; hand it back to Start()
        double variance = 0;        // of its run time, s^2; hand it back to Start() too
        Duration retry_after{0};    // refused: when a job like it would fit, if nothing else came
    };

    // Decides on a job of bcrypt `cost` arriving at `now`. Admitted: the job counts as work
    // ahead of every later offer until Start(). Refused: nothing changes.
    Decision Offer(int cost, SteadyClock::time_point now);

    // An admitted job (its Decision::estimate and ::variance) leaves the queue and runs on
    // `worker` (0..workers-1), which must be idle.
    void Start(int worker, Duration estimate, double variance, SteadyClock::time_point now);

    // `jobs` admitted jobs of bcrypt `cost` (the sums of their Decision::estimate and
    // ::variance) leave the queue and run together on idle `worker`, expected to take the
    // batch time of `jobs` (Batching::Time) at the model's estimate for `cost`.
    void StartBatch(int worker, int cost, int jobs, Duration estimates, double variances,
                    SteadyClock::time_point now);

    // `worker`'s job or batch, of bcrypt `cost`, ended at `now` after computing `computed`
    // hashes together (fewer than started when some clients had gone; 0 teaches nothing):
    // its run time, divided by the batch time of `computed`, teaches the model.
    void Finish(int worker, int cost, SteadyClock::time_point now, int computed = 1);

    // Admitted jobs not started yet.
    int queued() const { return queued_jobs_; }

    // The mean wait a job offered at `now` would be told (see Offer).
    Duration ExpectedWait(SteadyClock::time_point now) const;

    // expected_wait + kSpreads standard deviations of it, for a job offered at `now`.
    Duration WaitBound(SteadyClock::time_point now) const;

    const HashTimeModel& model() const { return model_; }

  private:
    struct Running {
        bool busy = false;
        Duration estimate{0};
        double variance = 0;
        SteadyClock::time_point since{};
    };

    Duration deadline_;
    HashTimeModel model_;
    Batching batching_;
    std::vector<Running> running_;
    Duration queued_work_{0};     // sum of the estimates of admitted jobs not started yet
    double queued_variance_ = 0;  // sum of their variances, s^2
    int queued_jobs_ = 0;
};

}  // namespace hashd
