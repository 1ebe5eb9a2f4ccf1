// The hashing threads' batching (hash_pool.h): same-cost jobs computed together, hashes and
// verifications mixed, a lone job alone, a job whose client went away not computed. A gate job
// holds the only hashing thread while the others queue, so the batches are deterministic.

#include "hashing/hash_pool.h"

#include <gtest/gtest.h>

#include <future>
#include <mutex>

#include "hashing/bcrypt.h"
#include "test_support.h"

namespace hashd {
namespace {

using std::chrono::milliseconds;

// Records the size of every batch the pool computes, and computes it with the real engine.
struct Recorder {
    std::mutex mutex;
    std::vector<std::size_t> sizes;
    BatchCompute Compute(int lanes) {
        return [this, lanes](std::span<const BcryptInput> inputs) {
            {
                std::lock_guard lock(mutex);
                sizes.push_back(inputs.size());
            }
            return BcryptCompute(inputs, lanes);
        };
    }
};

// A job computing bcrypt of `password` with `setting` (a fresh one: a hash; a full hash: a
// verification), or none when `gone`; `gate`, when set, blocks Prepare until it is released.
class TestJob final : public HashJob {
  public:
    TestJob(std::string password, std::string setting, std::promise<Result<std::string>>& out,
            std::shared_future<void> gate = {}, bool gone = false)
        : password_(std::move(password)),
          setting_(std::move(setting)),
          out_(out),
          gate_(std::move(gate)),
          gone_(gone) {}
    std::optional<BcryptInput> Prepare() override {
        if (gate_.valid()) gate_.wait();
        if (gone_) {
            out_.set_value(Error{ErrorKind::kClientGone, "client_closed_request", "gone"});
            return std::nullopt;
        }
        return BcryptInput{password_, setting_};
    }
    void Complete(const Result<std::string>& computed, double) override {
        out_.set_value(computed);
    }

  private:
    std::string password_, setting_;
    std::promise<Result<std::string>>& out_;
    std::shared_future<void> gate_;
    bool gone_;
};

Batching ThreeLanes() {
    return Batching{3, {1.0, 1.2, 1.3}};
}

TEST(HashPool, BatchesQueuedJobsOfOneCostMixingHashAndVerify) {
    testing::FakeMetrics metrics;
    Recorder recorder;
    HashPool pool(1, milliseconds(0), 1e-6, ThreeLanes(), recorder.Compute(3), metrics);

    std::promise<void> open;
    std::shared_future<void> gate = open.get_future().share();
    std::promise<Result<std::string>> first, a, b, c, d, other;
    const std::string known = LibxcryptBcrypt("verify me", BcryptNewSetting(4).value()).value();
    const std::string setting_a = BcryptNewSetting(4).value();
    const std::string setting_c = BcryptNewSetting(4).value();
    const std::string setting_other = BcryptNewSetting(5).value();

    std::vector<std::unique_ptr<HashJob>> jobs;
    jobs.push_back(std::make_unique<TestJob>("gate", BcryptNewSetting(4).value(), first, gate));
    jobs.push_back(std::make_unique<TestJob>("alpha", setting_a, a));
    jobs.push_back(std::make_unique<TestJob>("verify me", known, b));  // verify, match
    jobs.push_back(std::make_unique<TestJob>("other cost", setting_other, other));
    jobs.push_back(std::make_unique<TestJob>("gamma", setting_c, c));
    jobs.push_back(std::make_unique<TestJob>("verify mf", known, d));  // verify, no match
    for (std::size_t i = 0; i < jobs.size(); ++i)
        ASSERT_TRUE(pool.Offer(i == 3 ? 5 : 4, jobs[i]).admitted);
    open.set_value();
    pool.Drain();

    EXPECT_EQ(first.get_future().get().ok(), true);
    EXPECT_EQ(a.get_future().get().value(), LibxcryptBcrypt("alpha", setting_a).value());
    EXPECT_EQ(b.get_future().get().value(), known);
    EXPECT_EQ(c.get_future().get().value(), LibxcryptBcrypt("gamma", setting_c).value());
    EXPECT_NE(d.get_future().get().value(), known);
    EXPECT_EQ(other.get_future().get().value(),
              LibxcryptBcrypt("other cost", setting_other).value());
    // The gate went alone or with the first cost-4 jobs; after it, the cost-4 jobs went
    // three at a time and the cost-5 job alone: never more than three, never costs mixed.
    std::size_t total = 0;
    for (std::size_t size : recorder.sizes) {
        EXPECT_LE(size, 3u);
        total += size;
    }
    EXPECT_EQ(total, 6u);
    EXPECT_LT(recorder.sizes.size(), 6u) << "nothing was batched";
}

TEST(HashPool, ALoneJobRunsAlone) {
    testing::FakeMetrics metrics;
    Recorder recorder;
    HashPool pool(1, milliseconds(0), 1e-6, ThreeLanes(), recorder.Compute(3), metrics);
    std::promise<Result<std::string>> out;
    const std::string setting = BcryptNewSetting(4).value();
    std::unique_ptr<HashJob> job = std::make_unique<TestJob>("solo", setting, out);
    ASSERT_TRUE(pool.Offer(4, job).admitted);
    EXPECT_EQ(out.get_future().get().value(), LibxcryptBcrypt("solo", setting).value());
    pool.Drain();
    EXPECT_EQ(recorder.sizes, std::vector<std::size_t>{1});
}

TEST(HashPool, AJobWhoseClientWentAwayIsNotComputed) {
    testing::FakeMetrics metrics;
    Recorder recorder;
    HashPool pool(1, milliseconds(0), 1e-6, ThreeLanes(), recorder.Compute(3), metrics);
    std::promise<void> open;
    std::shared_future<void> gate = open.get_future().share();
    std::promise<Result<std::string>> first, gone, kept;
    std::unique_ptr<HashJob> blocker =
        std::make_unique<TestJob>("gate", BcryptNewSetting(4).value(), first, gate);
    ASSERT_TRUE(pool.Offer(5, blocker).admitted);  // cost 5: runs alone, holds the thread
    std::unique_ptr<HashJob> left =
        std::make_unique<TestJob>("left", BcryptNewSetting(4).value(), gone, gate, true);
    std::unique_ptr<HashJob> stays =
        std::make_unique<TestJob>("stays", BcryptNewSetting(4).value(), kept, gate);
    ASSERT_TRUE(pool.Offer(4, left).admitted);
    ASSERT_TRUE(pool.Offer(4, stays).admitted);
    open.set_value();
    pool.Drain();
    EXPECT_EQ(gone.get_future().get().error().kind, ErrorKind::kClientGone);
    EXPECT_TRUE(kept.get_future().get().ok());
    std::size_t computed = 0;
    for (std::size_t size : recorder.sizes) computed += size;
    EXPECT_EQ(computed, 2u);  // the gate and "stays"; "left" never reached the engine
}

}  // namespace
}  // namespace hashd
