// Admission by expected wait.
//
// The problem. bcrypt is CPU-bound: a process with W hashing threads computes at most W hashes
// at once, and a request admitted beyond that only waits. A queue must therefore stay bounded,
// but by what? A bound on the *count* of requests (nginx's max_conns of two per process, the
// first design) is right for one cost only: two cost-4 requests are 2 ms of work, two cost-14
// requests 1.8 s. Set for cost 12 it refused ordinary bursts (16 requests at cost 10 from 8
// connections, work the machine finishes in under half a second, got 12 answers of 503).
//
// The policy. A request is admitted when the work ahead of it can be finished within
// HASHD_QUEUE_DEADLINE_MS by this process's hashing threads, and refused at once (503 with
// Retry-After) when it cannot. Every request's cost is known before it is queued (the body is
// parsed first, which is cheap next to a hash), so the work ahead is a sum of estimates:
//
//   expected wait = (sum of the estimates of the queued jobs
//                    + the estimated remainder of each running job) / W       (all W busy)
//                 = 0                                                          (a worker idle)
//
// and a job is admitted when that wait, plus twice its standard deviation, is within the
// deadline: the estimates are means, and the wait behind n hashes varies with the sum of their
// variances, so a job admitted on the mean alone at the very edge would start late about half
// the time (measured at 4x overload: the p99 of accepted requests was 6 % above deadline + one
// hash on the mean alone, 4-6 % with the spread in two runs). The variance comes from how far
// measured hashes stray from their means, and treats them as independent: under overload they
// are not (one CPU contention slows every queued hash), which is what is left.
//
// The estimate of a job at cost c is an exponentially weighted moving average of the run times
// this process measured at cost c (or, for a cost not seen yet, the average time per 2^c
// scaled to c, since bcrypt doubles its work per cost step), seeded at start-up by the CPU time
// of a few small hashes (optimistic: CPU time does not see other work on the machine; the
// first real run times correct it). It follows the machine: when other work steals CPU, hashes take
// longer, the estimates grow and fewer requests are admitted, which is what the deadline is for.
//
// Trade-offs, said plainly:
// - Dividing the work by W is exact for W = 1 (the default: one thread per process, one process
//   per core) and an approximation otherwise (it assumes the work spreads evenly over the
//   threads; a FIFO of unequal jobs can leave one thread idle a little earlier).
// - The estimate is of the mean, so a request admitted with an expected wait just under the
//   deadline may wait a little longer. The bound that matters to a client is deadline + one
//   hash time, which is what bench/ checks at 4x overload.
// - Each process decides for its own queue. nginx's least_conn spreads requests by in-flight
//   count, so P processes with one thread behave nearly like one queue with P threads; a burst
//   split unevenly can be refused a little earlier than the pool as a whole would have to.
// - Refusing costs the client a round trip; admitting a request that then waits past the
//   deadline costs it the deadline and a core's work on an answer nobody may be waiting for.
//   Refusing at once is the cheaper mistake, and Retry-After says when to come back: the
//   expected wait's excess over the deadline plus one such job, the earliest moment a retry
//   would be admitted if nothing else arrived.
// - Deadline 0 admits everything: the queue is then unbounded (for tests and experiments).
//
// Probes (/healthz, /readyz, /metrics) and message requests never enter this queue: they are
// answered by the threads that accept requests (fcgi_server.cc), so they never wait behind a
// hash.

#include "hashing/admission.h"

#include <time.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "hashing/bcrypt_engine.h"

namespace hashd {
namespace {

double Units(int cost) {
    return std::ldexp(1.0, cost);
}

AdmissionQueue::Duration Micros(double seconds) {
    return AdmissionQueue::Duration(static_cast<std::int64_t>(std::ceil(seconds * 1e6)));
}

}  // namespace

HashTimeModel::HashTimeModel(double seconds_per_unit)
    : per_unit_(seconds_per_unit > 0 ? seconds_per_unit : 1e-4) {}

double HashTimeModel::Estimate(int cost) const {
    cost = std::clamp(cost, kMinCost, kMaxCost);
    if (per_cost_[cost] > 0) return per_cost_[cost];
    return per_unit_ * Units(cost);
}

double HashTimeModel::Variance(int cost) const {
    const double mean = Estimate(cost);
    return relative_variance_ * mean * mean;
}

void HashTimeModel::Record(int cost, double seconds) {
    if (cost < kMinCost || cost > kMaxCost || !(seconds > 0)) return;
    // One sample moves the estimates by a bounded step, rather than replacing them: one slow
    // hash (a cold process, a busy moment) would otherwise make the process refuse the next
    // burst the cores could finish. A sample counts as at most twice (at least half) the
    // current estimate, and as at most 50 % off for the spread; a machine that really got
    // slower still moves the estimate by up to 20 % a hash.
    const double mean = Estimate(cost);
    const double sample = std::clamp(seconds, mean / 2, mean * 2);
    const double deviation = std::clamp((sample - mean) / mean, -0.5, 0.5);
    relative_variance_ += kWeight * (deviation * deviation - relative_variance_);
    per_cost_[cost] = mean + kWeight * (sample - mean);
    per_unit_ += kWeight * (sample / Units(cost) - per_unit_);
}

double HashTimeModel::Calibrate(const BatchCompute& compute) {
    // CPU time of the calling thread, not wall time: a process (re)started on a busy machine,
    // or while its siblings start, would otherwise time its hashes several times too slow and
    // refuse the first burst the cores could finish. CPU time is the optimistic seed; the
    // moving averages of real (wall-clock) run times correct it from the first hashes on.
    // Cost 7 is ~7 ms of CPU: long enough to time, short enough for start-up. The fastest of
    // three.
    constexpr int kCost = 7;
    const auto cpu_seconds = [] {
        timespec ts{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
    };
    const BcryptInput input{"calibration", "$2b$07$abcdefghijklmnopqrstuu"};
    static_assert(kCost == 7, "the setting above names the cost");
    double best = 0;
    for (int i = 0; i < 3; ++i) {
        const double start = cpu_seconds();
        const auto hashed = compute(std::span(&input, 1));
        if (hashed.size() != 1 || !hashed.front().ok()) continue;
        const double took = cpu_seconds() - start;
        if (took > 0 && (best == 0 || took < best)) best = took;
    }
    return best > 0 ? best / Units(kCost) : 1e-4;
}

double Batching::Time(int n) const {
    if (batch_time.empty()) return std::max(1, n);
    const auto at = static_cast<std::size_t>(std::clamp(n, 1, static_cast<int>(batch_time.size())));
    return batch_time[at - 1];
}

Batching Batching::Measure(int lanes) {
    // Cost 5 (~1.5 ms a hash, ~3 ms for four together): long enough to time in CPU time, and
    // the whole measurement stays under ~40 ms of start-up. The fastest of three per size.
    Batching batching;
    batching.lanes = std::clamp(lanes, 1, kBcryptMaxLanes);
    batching.batch_time.assign(static_cast<std::size_t>(batching.lanes), 1.0);
    if (batching.lanes == 1) return batching;
    const auto cpu_seconds = [] {
        timespec ts{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
    };
    const std::string setting = "$2b$05$abcdefghijklmnopqrstuu";
    std::vector<double> best(static_cast<std::size_t>(batching.lanes), 0);
    for (int round = 0; round < 3; ++round) {
        for (int n = 1; n <= batching.lanes; ++n) {
            std::vector<BcryptInput> inputs(static_cast<std::size_t>(n),
                                            BcryptInput{"calibration", setting});
            const double start = cpu_seconds();
            (void)BcryptCompute(inputs, n);
            const double took = cpu_seconds() - start;
            double& slot = best[static_cast<std::size_t>(n - 1)];
            if (took > 0 && (slot == 0 || took < slot)) slot = took;
        }
    }
    if (best[0] <= 0) return batching;
    for (int n = 2; n <= batching.lanes; ++n)
        batching.batch_time[static_cast<std::size_t>(n - 1)] =
            std::clamp(best[static_cast<std::size_t>(n - 1)] / best[0], 1.0, double(n));
    return batching;
}

AdmissionQueue::AdmissionQueue(int workers, std::chrono::milliseconds deadline, HashTimeModel model,
                               Batching batching)
    : deadline_(deadline),
      model_(model),
      batching_(std::move(batching)),
      running_(static_cast<std::size_t>(std::max(1, workers))) {}

namespace {

// The spread of the wait ahead: work on W workers in parallel ends after (sum of it) / W, whose
// variance is (sum of the variances) / W^2.
AdmissionQueue::Duration Spread(double variance, std::size_t workers, double times) {
    return Micros(times * std::sqrt(std::max(0.0, variance)) / static_cast<double>(workers));
}

}  // namespace

AdmissionQueue::Duration AdmissionQueue::ExpectedWait(SteadyClock::time_point now) const {
    Duration ahead = queued_work_;
    bool idle_worker = false;
    for (const Running& r : running_) {
        if (!r.busy) {
            idle_worker = true;
            continue;
        }
        const auto elapsed = std::chrono::duration_cast<Duration>(now - r.since);
        // A job past its estimate is still running: count it as about to end, not as negative.
        ahead += std::max(Duration(0), r.estimate - elapsed);
    }
    if (idle_worker && queued_jobs_ == 0) return Duration(0);
    return ahead / static_cast<std::int64_t>(running_.size());
}

AdmissionQueue::Duration AdmissionQueue::WaitBound(SteadyClock::time_point now) const {
    const Duration mean = ExpectedWait(now);
    if (mean == Duration(0)) return mean;
    double variance = queued_variance_;
    for (const Running& r : running_)
        if (r.busy) variance += r.variance;
    return mean + Spread(variance, running_.size(), kSpreads);
}

AdmissionQueue::Decision AdmissionQueue::Offer(int cost, SteadyClock::time_point now) {
    Decision d;
    // Queued jobs run `lanes` at a time: each adds its share of a batch to the work ahead.
    const double share = batching_.Share();
    d.estimate = Micros(model_.Estimate(cost) * share);
    d.variance = model_.Variance(cost) * share * share;
    d.expected_wait = ExpectedWait(now);
    d.wait_bound = WaitBound(now);
    d.admitted = deadline_.count() == 0 || d.wait_bound <= deadline_;
    if (d.admitted) {
        queued_work_ += d.estimate;
        queued_variance_ += d.variance;
        ++queued_jobs_;
    } else {
        const auto workers = static_cast<std::int64_t>(running_.size());
        d.retry_after = d.wait_bound - deadline_ + d.estimate / workers;
    }
    return d;
}

void AdmissionQueue::Start(int worker, Duration estimate, double variance,
                           SteadyClock::time_point now) {
    queued_work_ -= estimate;
    queued_variance_ -= variance;
    --queued_jobs_;
    // Guard the invariant against rounding: an empty queue holds no work.
    if (queued_jobs_ <= 0) {
        queued_jobs_ = 0;
        queued_work_ = Duration(0);
        queued_variance_ = 0;
    }
    Running& r = running_.at(static_cast<std::size_t>(worker));
    r = {true, estimate, variance, now};
}

void AdmissionQueue::StartBatch(int worker, int cost, int jobs, Duration estimates,
                                double variances, SteadyClock::time_point now) {
    queued_work_ -= estimates;
    queued_variance_ -= variances;
    queued_jobs_ -= jobs;
    if (queued_jobs_ <= 0) {
        queued_jobs_ = 0;
        queued_work_ = Duration(0);
        queued_variance_ = 0;
    }
    const double factor = batching_.Time(jobs);
    Running& r = running_.at(static_cast<std::size_t>(worker));
    r = {true, Micros(model_.Estimate(cost) * factor), model_.Variance(cost) * factor * factor,
         now};
}

void AdmissionQueue::Finish(int worker, int cost, SteadyClock::time_point now, int computed) {
    Running& r = running_.at(static_cast<std::size_t>(worker));
    if (r.busy && computed > 0)
        model_.Record(
            cost, std::chrono::duration<double>(now - r.since).count() / batching_.Time(computed));
    r = {};
}

}  // namespace hashd
