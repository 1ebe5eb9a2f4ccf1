// hashd-worker's loop when completing a datum keeps failing (issue 21, finding 2): it backs
// off exponentially up to a cap, keeps its log bounded, and reports the streak in metrics.

#include "worker/worker.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "test_support.h"

namespace hashd {
namespace {

// A queue whose head datum is always claimable and whose completions fail while `failing`.
class FailingQueue final : public DataQueue {
  public:
    Result<std::string> Enqueue(std::string_view, std::string_view) override {
        return std::string("1");
    }
    Result<std::optional<Datum>> Claim(std::chrono::milliseconds) override {
        ++claims;
        if (done) {
            *stop = true;  // processed: the test is over
            return std::optional<Datum>{};
        }
        return std::optional<Datum>{Datum{"1", "d", 0, "1"}};
    }
    Status Complete(const Datum&) override {
        if (failing) return Error{ErrorKind::kFull, "store_full", "disk full", 0, "53100"};
        done = true;
        return Ok{};
    }
    Status Recover() override { return Ok{}; }
    Result<std::optional<std::string>> First() override { return std::optional<std::string>{}; }
    Result<QueueStats> Stats() override { return QueueStats{}; }

    std::atomic<bool>* stop = nullptr;
    bool failing = true;
    bool done = false;
    int claims = 0;
};

std::string TempPath(const char* name) {
    return (std::filesystem::temp_directory_path() /
            (std::string(name) + "-" + std::to_string(::getpid())))
        .string();
}

TEST(Worker, BacksOffExponentiallyWithACapAndLogsBoundedly) {
    FailingQueue queue;
    const Logger logger(LogTarget::kStderr, "hashd-worker");
    const std::string metrics = TempPath("worker-test.prom");
    std::atomic<bool> stop{false};
    queue.stop = &stop;
    std::vector<std::chrono::milliseconds> sleeps;
    Worker worker(queue, logger, "memory", metrics, [&](std::chrono::milliseconds d) {
        sleeps.push_back(d);
        if (sleeps.size() == 40) queue.failing = false;  // the store accepts again
    });
    ::testing::internal::CaptureStderr();
    worker.Run(stop, [] {});
    const std::string log = ::testing::internal::GetCapturedStderr();

    ASSERT_EQ(sleeps.size(), 40u) << "one back-off per failure, none after the success";
    EXPECT_EQ(sleeps[0], Worker::kRetryInterval);
    for (std::size_t i = 1; i < 40; ++i) {
        EXPECT_GE(sleeps[i], sleeps[i - 1]) << i;
        EXPECT_LE(sleeps[i], Worker::kMaxFailureBackoff) << i;
    }
    EXPECT_EQ(sleeps[39], Worker::kMaxFailureBackoff);
    EXPECT_TRUE(queue.done) << "processed once the store accepted it";
    // 40 failures: the first logs, the rest fall in one rate-limit interval (no real time
    // passes here), plus the recovery line; never the three lines per turn of a spin.
    std::size_t lines = 0;
    for (char c : log) lines += c == '\n';
    EXPECT_LE(lines, 4u) << log;
    EXPECT_NE(log.find("datum not processed"), std::string::npos) << log;
    const std::string file = [&] {
        std::ifstream in(metrics);
        return std::string(std::istreambuf_iterator<char>(in), {});
    }();
    EXPECT_NE(file.find("hashd_worker_failed_total 40\n"), std::string::npos) << file;
    EXPECT_NE(file.find("hashd_worker_consecutive_failures 0\n"), std::string::npos) << file;
    std::filesystem::remove(metrics);
}

}  // namespace
}  // namespace hashd
