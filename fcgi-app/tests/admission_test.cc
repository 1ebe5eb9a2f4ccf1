// Admission by expected wait (admission.h), driven with a fixed model and explicit times: no
// thread, no clock, no sleep, so every figure below is exact.

#include "hashing/admission.h"

#include <gtest/gtest.h>

#include <cmath>

#include "http/errors.h"

namespace hashd {
namespace {

using std::chrono::milliseconds;
using Micros = AdmissionQueue::Duration;

// A model in which cost 12 takes exactly 250 ms and cost 10 62.5 ms (4x less).
HashTimeModel QuarterSecondAt12() {
    return HashTimeModel(0.25 / std::ldexp(1.0, 12));
}

const SteadyClock::time_point t0{};

SteadyClock::time_point At(int ms) {
    return t0 + milliseconds(ms);
}

TEST(HashTimeModel, ScalesUnseenCostsByPowersOfTwo) {
    HashTimeModel model = QuarterSecondAt12();
    EXPECT_DOUBLE_EQ(model.Estimate(12), 0.25);
    EXPECT_DOUBLE_EQ(model.Estimate(10), 0.0625);
    EXPECT_DOUBLE_EQ(model.Estimate(14), 1.0);
}

TEST(HashTimeModel, LearnsEachCostAsAMovingAverage) {
    HashTimeModel model = QuarterSecondAt12();
    const double w = HashTimeModel::kWeight;
    // Even the first sample only moves the estimate: one slow first hash must not dominate.
    model.Record(12, 0.4);
    EXPECT_DOUBLE_EQ(model.Estimate(12), 0.25 + w * 0.15);
    const double before = model.Estimate(12);
    model.Record(12, 0.3);
    EXPECT_DOUBLE_EQ(model.Estimate(12), before + w * (0.3 - before));
    // The per-unit average moved towards the slower machine, so unseen costs did too.
    EXPECT_GT(model.Estimate(10), 0.0625);
    // Nonsense is ignored.
    const double now = model.Estimate(12);
    model.Record(12, -1);
    model.Record(40, 1);
    EXPECT_DOUBLE_EQ(model.Estimate(12), now);
}

TEST(HashTimeModel, OneOutlierMovesTheEstimateByABoundedStep) {
    HashTimeModel model = QuarterSecondAt12();
    const double w = HashTimeModel::kWeight;
    model.Record(12, 10.0);  // a 40x outlier counts as twice the estimate
    EXPECT_DOUBLE_EQ(model.Estimate(12), 0.25 + w * 0.25);
    // ... and as 50 % off for the spread.
    EXPECT_DOUBLE_EQ(model.Variance(12), w * 0.25 * model.Estimate(12) * model.Estimate(12));
    // A machine that really is 4x slower is reached within a few dozen hashes.
    for (int i = 0; i < 40; ++i) model.Record(12, 1.0);
    EXPECT_NEAR(model.Estimate(12), 1.0, 0.01);
}

TEST(Admission, AdmitsWhileTheWorkAheadFitsTheDeadline) {
    AdmissionQueue queue(1, milliseconds(1000), QuarterSecondAt12());
    // An idle worker: no wait at all.
    auto first = queue.Offer(12, t0);
    EXPECT_TRUE(first.admitted);
    EXPECT_EQ(first.expected_wait, Micros(0));
    EXPECT_EQ(first.estimate, Micros(250000));
    // Four more fit: 250, 500, 750 and 1000 ms of work ahead (the deadline itself is allowed).
    for (int ahead_ms : {250, 500, 750, 1000}) {
        auto d = queue.Offer(12, t0);
        EXPECT_TRUE(d.admitted) << ahead_ms;
        EXPECT_EQ(d.expected_wait, milliseconds(ahead_ms));
    }
    // The sixth would wait 1250 ms: refused, nothing queued, told to come back when the excess
    // (250 ms) plus one such hash (250 ms) has drained.
    auto refused = queue.Offer(12, t0);
    EXPECT_FALSE(refused.admitted);
    EXPECT_EQ(refused.expected_wait, milliseconds(1250));
    EXPECT_EQ(refused.retry_after, milliseconds(500));
    EXPECT_EQ(queue.queued(), 5);
}

TEST(Admission, CountsWorkNotRequests) {
    AdmissionQueue queue(1, milliseconds(1000), QuarterSecondAt12());
    // Cost 10 is a quarter of cost 12: the same deadline admits 17 (16 x 62.5 ms = 1000 ms
    // ahead of the last), where a count cap right for cost 12 would have stopped at 5.
    int admitted = 0;
    while (queue.Offer(10, t0).admitted) ++admitted;
    EXPECT_EQ(admitted, 17);
    // A cheaper job cannot jump the queue either: the work ahead is what it is.
    EXPECT_FALSE(queue.Offer(4, t0).admitted);
}

TEST(Admission, SpreadsTheWorkOverTheWorkers) {
    AdmissionQueue queue(2, milliseconds(1000), QuarterSecondAt12());
    int admitted = 0;
    while (queue.Offer(12, t0).admitted) ++admitted;
    // Until the two workers start there is no running job: 9 x 250 ms / 2 = 1125 > 1000, so
    // 9 are admitted (the 9th with 8 x 250 / 2 = 1000 ms ahead).
    EXPECT_EQ(admitted, 9);
}

TEST(Admission, RunningJobsCountOnlyWhatRemainsOfThem) {
    AdmissionQueue queue(1, milliseconds(1000), QuarterSecondAt12());
    auto running = queue.Offer(12, t0);
    queue.Start(0, running.estimate, running.variance, t0);
    EXPECT_EQ(queue.queued(), 0);
    EXPECT_EQ(queue.ExpectedWait(At(100)), milliseconds(150));
    // Past its estimate a job counts as ending now, never as negative work.
    EXPECT_EQ(queue.ExpectedWait(At(400)), Micros(0));
    // At 100 ms four fit behind it (150, 400, 650, 900 ms ahead); the fifth would wait
    // 150 + 4 x 250 = 1150 ms.
    for (int i = 0; i < 4; ++i) EXPECT_TRUE(queue.Offer(12, At(100)).admitted);
    EXPECT_FALSE(queue.Offer(12, At(100)).admitted);
    // 150 ms later the running job's remainder is gone: 4 x 250 = 1000 ms ahead fits.
    EXPECT_TRUE(queue.Offer(12, At(250)).admitted);
}

TEST(Admission, FinishedJobsTeachTheModel) {
    AdmissionQueue queue(1, milliseconds(1000), QuarterSecondAt12());
    auto d = queue.Offer(12, t0);
    queue.Start(0, d.estimate, d.variance, t0);
    queue.Finish(0, 12, At(500));  // twice as slow as the guess
    const double w = HashTimeModel::kWeight;
    EXPECT_DOUBLE_EQ(queue.model().Estimate(12), 0.25 + w * 0.25);
    // Each job is now expected to take 300 ms, give or take 67 ms (a relative deviation
    // counted as 0.5, weighted 0.2): 600 + 2 x 67 x sqrt(2) = 790 ms for the third, 900 +
    // 2 x 67 x sqrt(3) = 1132 ms for the fourth. Three fit, where five did.
    int admitted = 0;
    while (queue.Offer(12, At(500)).admitted) ++admitted;
    EXPECT_EQ(admitted, 3);
}

TEST(Admission, AnIdleWorkerMeansNoWait) {
    AdmissionQueue queue(2, milliseconds(1), QuarterSecondAt12());
    auto d = queue.Offer(14, t0);
    queue.Start(0, d.estimate, d.variance, t0);
    // One worker is hashing for a second, the other is idle: the next job starts at once.
    auto next = queue.Offer(14, t0);
    EXPECT_TRUE(next.admitted);
    EXPECT_EQ(next.expected_wait, Micros(0));
}

TEST(HashTimeModel, LearnsHowMuchRunTimesVary) {
    HashTimeModel model = QuarterSecondAt12();
    EXPECT_EQ(model.Variance(12), 0);  // nothing measured: the optimistic seed
    model.Record(12, 0.30);            // 20 % above the estimate of 0.25
    const double relative = HashTimeModel::kWeight * 0.2 * 0.2;
    const double mean = model.Estimate(12);
    EXPECT_DOUBLE_EQ(model.Variance(12), relative * mean * mean);
    // The same relative spread applies to costs not measured yet.
    EXPECT_DOUBLE_EQ(model.Variance(10), relative * model.Estimate(10) * model.Estimate(10));
}

TEST(Admission, AdmitsOnTheWaitPlusTwoStandardDeviations) {
    // Cost 12 is 250 ms on average with a standard deviation of 50 ms (20 %).
    HashTimeModel model = QuarterSecondAt12();
    for (int i = 0; i < 200; ++i) model.Record(12, i % 2 == 0 ? 0.20 : 0.30);
    AdmissionQueue queue(1, milliseconds(1000), model);
    // Four ahead: a mean wait of ~1000 ms, plus 2 x 50 ms x sqrt(4): refused, where the mean
    // alone would have admitted it. Three ahead: ~750 + 2 x 50 x sqrt(3) = ~923 ms: admitted.
    for (int i = 0; i < 4; ++i) EXPECT_TRUE(queue.Offer(12, t0).admitted) << i;
    auto fifth = queue.Offer(12, t0);
    EXPECT_FALSE(fifth.admitted);
    EXPECT_GT(fifth.wait_bound, fifth.expected_wait);
}

TEST(Admission, ZeroDeadlineAdmitsEverything) {
    AdmissionQueue queue(1, milliseconds(0), QuarterSecondAt12());
    for (int i = 0; i < 100; ++i) EXPECT_TRUE(queue.Offer(14, t0).admitted);
    EXPECT_EQ(queue.queued(), 100);
}

TEST(Admission, AnEmptiedQueueHoldsNoWork) {
    AdmissionQueue queue(1, milliseconds(1000), QuarterSecondAt12());
    auto a = queue.Offer(12, t0);
    auto b = queue.Offer(12, t0);
    queue.Start(0, a.estimate, a.variance, t0);
    queue.Finish(0, 12, At(250));
    queue.Start(0, b.estimate, b.variance, At(250));
    queue.Finish(0, 12, At(500));
    EXPECT_EQ(queue.queued(), 0);
    EXPECT_EQ(queue.ExpectedWait(At(500)), Micros(0));
}

TEST(HashTimeModel, CalibrationMeasuresSomethingPlausible) {
    // One cost-6 hash takes between a microsecond and a second on any machine this runs on:
    // a sanity bound on the unit, not a timing assertion.
    const double unit = HashTimeModel::Calibrate(
        [](std::span<const BcryptInput> inputs) { return BcryptCompute(inputs, 1); });
    EXPECT_GT(unit * 64, 1e-6);
    EXPECT_LT(unit * 64, 1.0);
}

TEST(HashTimeModel, CalibrationTimesTheEngineItIsGiven) {
    // The seed must time what the hashing threads run (a lone job on the interleaved engine),
    // not libxcrypt: three lone cost-7 inputs, and the fallback when none succeeds.
    int calls = 0;
    const double unit = HashTimeModel::Calibrate([&](std::span<const BcryptInput> inputs) {
        ++calls;
        EXPECT_EQ(inputs.size(), 1u);
        EXPECT_EQ(BcryptSettingCost(inputs.front().setting).value(), 7);
        return std::vector<Result<std::string>>{
            Error{ErrorKind::kInternal, "engine_failed", "Injected."}};
    });
    EXPECT_EQ(calls, 3);
    EXPECT_EQ(unit, 1e-4);
}

TEST(OverloadResponse, CarriesMillisecondsAndWholeSecondsRoundedUp) {
    Error error{ErrorKind::kUnavailable, "overloaded", "Retry later."};
    error.retry_after_ms = 1500;
    Response r = ErrorResponse(error, "id");
    ASSERT_NE(r.FindHeader("Retry-After"), nullptr);
    EXPECT_EQ(*r.FindHeader("Retry-After"), "2");
    EXPECT_EQ(*r.FindHeader("Retry-After-Ms"), "1500");
    error.retry_after_ms = 20;  // under a second still says 1: 0 would mean "now"
    EXPECT_EQ(*ErrorResponse(error, "id").FindHeader("Retry-After"), "1");
}

TEST(Admission, ABatchingThreadAdmitsABurstAsManyTimesLargerAsItComputesFaster) {
    // Cost 12 = 250 ms alone; three together take 1.2x one (2.5x the throughput).
    const Batching three{3, {1.0, 1.1, 1.2}};
    AdmissionQueue alone(1, milliseconds(1000), QuarterSecondAt12());
    AdmissionQueue batched(1, milliseconds(1000), QuarterSecondAt12(), three);
    int admitted_alone = 0, admitted_batched = 0;
    for (int i = 0; i < 40; ++i) {
        admitted_alone += alone.Offer(12, t0).admitted;
        admitted_batched += batched.Offer(12, t0).admitted;
    }
    // One worker, idle: the first is admitted at once, then 1 s of work ahead fits; the
    // relative spread is still 0, so the counts are exact: 1 + 4 alone, 1 + 10 batched
    // (each queued job adds 1.2 / 3 of 250 ms).
    EXPECT_EQ(admitted_alone, 5);
    EXPECT_EQ(admitted_batched, 11);
}

TEST(Admission, ARunningBatchCountsAsItsBatchTimeAndTeachesPerHashTime) {
    const Batching three{3, {1.0, 1.1, 1.2}};
    AdmissionQueue queue(1, milliseconds(1000), QuarterSecondAt12(), three);
    Micros estimates{0};
    double variances = 0;
    for (int i = 0; i < 3; ++i) {
        const auto d = queue.Offer(12, t0);
        estimates += d.estimate;
        variances += d.variance;
    }
    queue.StartBatch(0, 12, 3, estimates, variances, t0);
    EXPECT_EQ(queue.queued(), 0);
    // 300 ms of batch ahead (1.2 x 250 ms), spread over the one worker.
    EXPECT_EQ(queue.ExpectedWait(t0), Micros(300000));
    // It took 300 ms for three: 250 ms a hash alone, as the model said: nothing to learn.
    queue.Finish(0, 12, At(300), 3);
    EXPECT_DOUBLE_EQ(queue.model().Estimate(12), 0.25);
    EXPECT_DOUBLE_EQ(Batching{}.Share(), 1.0);
    EXPECT_DOUBLE_EQ(three.Share(), 0.4);
    EXPECT_DOUBLE_EQ(three.Time(7), 1.2);  // clamped to the lanes
}

TEST(Admission, MeasuredBatchTimesAreBetweenNoGainAndNFold) {
    const Batching measured = Batching::Measure(3);
    ASSERT_EQ(measured.batch_time.size(), 3u);
    EXPECT_DOUBLE_EQ(measured.batch_time[0], 1.0);
    for (int n = 2; n <= 3; ++n) {
        EXPECT_GE(measured.Time(n), 1.0);
        EXPECT_LE(measured.Time(n), n);
    }
}

}  // namespace
}  // namespace hashd
