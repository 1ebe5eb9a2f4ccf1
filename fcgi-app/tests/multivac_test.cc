// The MultiVAC handlers on an in-memory store, the LMDB queue on a real LMDB environment, the
// worker loop, and the worker's metrics file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "api/health_handlers.h"
#include "api/multivac_handlers.h"
#include "api/router.h"
#include "metrics/worker_metrics.h"
#include "store/lmdb_queue.h"
#include "test_support.h"
#include "worker/worker.h"

namespace hashd {
namespace {

using testing::Get;
using testing::Harness;

Request FormPost(std::string body) {
    Request r;
    r.method = "POST";
    r.path = "/multivac/data";
    r.content_type = "application/x-www-form-urlencoded";
    r.body = std::move(body);
    r.request_id = "test-request-id";
    return r;
}

class TempDir {
  public:
    TempDir() {
        char pattern[] = "/tmp/hashd-multivac-test-XXXXXX";
        path_ = mkdtemp(pattern) ? pattern : "";
    }
    ~TempDir() { std::filesystem::remove_all(path_); }
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

TEST(MultivacHandlers, WelcomeAndInsufficientAreTheOriginalBodies) {
    Harness h;
    Response welcome = RouteRequest(Get("/"), h.services).response;
    EXPECT_EQ(welcome.status, 200);
    EXPECT_EQ(welcome.content_type, "text/html; charset=utf-8");
    EXPECT_EQ(welcome.body, "Welcome to MultiVAC!");
    Response answer = RouteRequest(Get("/multivac"), h.services).response;
    EXPECT_EQ(answer.status, 200);
    EXPECT_EQ(answer.content_type, "text/html; charset=utf-8");
    EXPECT_EQ(answer.body, "INSUFFICIENT DATA FOR MEANINGFUL ANSWER.");
}

TEST(MultivacHandlers, PostQueuesAndTheAnswerIsTheFirstProcessedDatumForever) {
    Harness h;
    Response posted = RouteRequest(FormPost("data=hello+world%21"), h.services).response;
    EXPECT_EQ(posted.status, 200);
    EXPECT_EQ(posted.content_type, "application/json");
    EXPECT_EQ(posted.body, R"({"response": "MultiVAC updated!"})");
    ASSERT_EQ(h.store.queue.queued.size(), 1u);
    EXPECT_EQ(h.store.queue.queued[0].data, "hello world!");
    // Queued is not processed.
    EXPECT_EQ(RouteRequest(Get("/multivac"), h.services).response.body,
              "INSUFFICIENT DATA FOR MEANINGFUL ANSWER.");

    ASSERT_EQ(RouteRequest(testing::JsonPost("/multivac/data", R"({"data":"second"})"), h.services)
                  .response.status,
              200);
    auto& queue = h.store.queue;
    for (int i = 0; i < 2; ++i) {
        auto datum = queue.Claim(std::chrono::milliseconds(0));
        ASSERT_TRUE(datum.ok() && datum.value());
        ASSERT_TRUE(queue.Complete(*datum.value()).ok());
    }
    EXPECT_EQ(RouteRequest(Get("/multivac"), h.services).response.body, "hello world!");
}

TEST(MultivacHandlers, ErrorsUseTheJsonShape) {
    Harness h;
    Response missing = RouteRequest(FormPost("other=1"), h.services).response;
    EXPECT_EQ(missing.status, 400);
    EXPECT_EQ(missing.error_code, "missing_field");
    Response large =
        RouteRequest(FormPost("data=" + std::string(64 * 1024 + 1, 'x')), h.services).response;
    EXPECT_EQ(large.status, 413);
    EXPECT_EQ(large.error_code, "data_too_large");
    Response not_utf8 = RouteRequest(FormPost("data=%FF%FE"), h.services).response;
    EXPECT_EQ(not_utf8.status, 400);
    EXPECT_EQ(not_utf8.error_code, "data_not_utf8");
    Response zzz = RouteRequest(Get("/zzz"), h.services).response;
    EXPECT_EQ(zzz.status, 404);
    EXPECT_EQ(zzz.content_type, "application/json");
    EXPECT_TRUE(h.store.queue.queued.empty());
}

TEST(MultivacHandlers, ARetryWithTheSameKeyOrRequestIdIsQueuedOnceAndAnswersTheSameId) {
    Harness h;
    auto post = [&](const std::string& key, const std::string& request_id, bool from_proxy,
                    const std::string& client = "192.0.2.1") {
        Request r = FormPost("data=once");
        r.idempotency_key = key;
        r.request_id = request_id;
        r.request_id_from_proxy = from_proxy;
        r.client = client;
        return RouteRequest(r, h.services).response;
    };
    auto id = [](const Response& r) {
        const std::string* header = r.FindHeader("X-Datum-Id");
        return header != nullptr ? *header : std::string("(none)");
    };
    // A client's Idempotency-Key: the same on its retry, whatever request id nginx gave each.
    Response first = post("a7f3c0de-key", "rid-1", true);
    Response again = post("a7f3c0de-key", "rid-2", true);
    EXPECT_EQ(first.status, 200);
    EXPECT_EQ(again.status, 200);
    EXPECT_EQ(again.body, first.body);
    EXPECT_EQ(id(again), id(first));
    EXPECT_EQ(h.store.queue.queued.size(), 1u);
    // nginx's or the load balancer's retry: the same request id.
    Response replayed_a = post("", "rid-3", true);
    Response replayed_b = post("", "rid-3", true);
    EXPECT_EQ(id(replayed_a), id(replayed_b));
    EXPECT_NE(id(replayed_a), id(first));
    EXPECT_EQ(h.store.queue.queued.size(), 2u);
    // Another client choosing the same key is another datum.
    EXPECT_NE(id(post("a7f3c0de-key", "rid-4", true, "198.51.100.7")), id(first));
    EXPECT_EQ(h.store.queue.queued.size(), 3u);
    // No key and an id the app made up itself: every post is a datum.
    EXPECT_NE(id(post("", "made-here", false)), id(post("", "made-here", false)));
    EXPECT_EQ(h.store.queue.queued.size(), 5u);
    // A key that is not a plain token is refused, not silently ignored.
    Response bad = post(std::string(256, 'k'), "rid-5", true);
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(bad.error_code, "invalid_idempotency_key");
    EXPECT_EQ(post("two words", "rid-6", true).status, 400);
}

TEST(MultivacHandlers, StoreDownIs503OnBothRoutes) {
    Harness h;
    h.store.down = true;
    for (const Request& request : {FormPost("data=x"), Get("/multivac")}) {
        Response r = RouteRequest(request, h.services).response;
        EXPECT_EQ(r.status, 503);
        EXPECT_EQ(r.error_code, "store_unavailable");
        EXPECT_NE(r.FindHeader("Retry-After"), nullptr);
    }
}

class LmdbQueueTest : public ::testing::Test {
  protected:
    std::unique_ptr<LmdbQueue> Open() {
        auto queue = LmdbQueue::Open(dir_.path() + "/multivac", std::size_t{1} << 22);
        EXPECT_TRUE(queue.ok()) << (queue.ok() ? "" : queue.error().message);
        return queue.ok() ? std::move(queue).value() : nullptr;
    }
    TempDir dir_;
};

TEST_F(LmdbQueueTest, AKeyQueuesOnceWithinTheWindowAndAgainAfterIt) {
    auto queue = Open();
    ASSERT_TRUE(queue);
    EXPECT_EQ(queue->Enqueue("first", "k1").value(), "1");
    EXPECT_EQ(queue->Enqueue("first, retried", "k1").value(), "1");
    EXPECT_EQ(queue->Enqueue("other", "k2").value(), "2");
    EXPECT_EQ(queue->Stats().value().depth, 2);
    // Still known once its datum is processed: a late retry is not queued again.
    auto claimed = queue->Claim(std::chrono::milliseconds(0));
    ASSERT_TRUE(claimed.ok() && claimed.value());
    ASSERT_TRUE(queue->Complete(*claimed.value()).ok());
    EXPECT_EQ(queue->Enqueue("first, late", "k1").value(), "1");
    // Past the window the key is forgotten (a window of 0 s: at once).
    queue->SetIdempotencyWindow(std::chrono::seconds(0));
    EXPECT_EQ(queue->Enqueue("short-lived", "k3").value(), "3");
    EXPECT_EQ(queue->Enqueue("short-lived, retried late", "k3").value(), "4");
}

TEST_F(LmdbQueueTest, ClaimsInArrivalOrderAndCompletesIdempotently) {
    auto queue = Open();
    ASSERT_TRUE(queue);
    EXPECT_EQ(queue->Enqueue("one", "").value(), "1");
    EXPECT_EQ(queue->Enqueue(std::string("two\0bytes", 9), "").value(), "2");
    auto stats = queue->Stats();
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats.value().depth, 2);
    ASSERT_TRUE(stats.value().oldest_enqueued_at.has_value());

    auto first = queue->Claim(std::chrono::milliseconds(0));
    ASSERT_TRUE(first.ok() && first.value());
    EXPECT_EQ(first.value()->id, "1");
    EXPECT_EQ(first.value()->data, "one");
    // Not completed: claimed again (at least once).
    auto again = queue->Claim(std::chrono::milliseconds(0));
    ASSERT_TRUE(again.ok() && again.value());
    EXPECT_EQ(again.value()->id, "1");
    ASSERT_TRUE(queue->Complete(*first.value()).ok());
    ASSERT_TRUE(queue->Complete(*again.value()).ok());  // a redelivery changes nothing
    EXPECT_EQ(queue->First().value(), std::optional<std::string>("one"));

    auto second = queue->Claim(std::chrono::milliseconds(0));
    ASSERT_TRUE(second.ok() && second.value());
    EXPECT_EQ(second.value()->data, std::string("two\0bytes", 9));
    ASSERT_TRUE(queue->Complete(*second.value()).ok());
    EXPECT_EQ(queue->First().value(), std::optional<std::string>("one"));  // forever
    EXPECT_EQ(queue->Stats().value().depth, 0);
    auto none = queue->Claim(std::chrono::milliseconds(0));
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(none.value());
}

// The queue's LMDB environment opened directly, as an operator's mdb_* tools would.
class RawEnv {
  public:
    RawEnv(const std::string& directory, unsigned flags) {
        if (mdb_env_create(&env_) != 0) return;
        mdb_env_set_maxdbs(env_, 5);
        mdb_env_set_mapsize(env_, std::size_t{1} << 22);
        opened_ = mdb_env_open(env_, directory.c_str(), flags | MDB_NOTLS, 0600) == 0;
    }
    ~RawEnv() {
        if (env_) mdb_env_close(env_);
    }
    RawEnv(const RawEnv&) = delete;
    RawEnv& operator=(const RawEnv&) = delete;
    MDB_env* get() const { return opened_ ? env_ : nullptr; }

    // Entries of the named database; -1 when it does not exist (or on any error).
    long long Entries(const char* name) const {
        MDB_txn* txn = nullptr;
        if (!get() || mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn) != 0) return -1;
        MDB_dbi dbi = 0;
        MDB_stat stat{};
        const bool found = mdb_dbi_open(txn, name, 0, &dbi) == 0 && mdb_stat(txn, dbi, &stat) == 0;
        mdb_txn_abort(txn);
        return found ? static_cast<long long>(stat.ms_entries) : -1;
    }

  private:
    MDB_env* env_ = nullptr;
    bool opened_ = false;
};

// What hashd 0.1.0 left: `count` processed data in a "processed" database of the queue's env.
void WriteLegacyProcessed(const std::string& directory, int count) {
    RawEnv env(directory, 0);
    ASSERT_NE(env.get(), nullptr);
    MDB_txn* txn = nullptr;
    ASSERT_EQ(mdb_txn_begin(env.get(), nullptr, 0, &txn), 0);
    MDB_dbi dbi = 0;
    ASSERT_EQ(mdb_dbi_open(txn, "processed", MDB_CREATE, &dbi), 0);
    const std::string datum(100, 'x');
    for (int i = 1; i <= count; ++i) {
        std::string id = std::to_string(i);
        MDB_val key{id.size(), id.data()};
        MDB_val value{datum.size(), const_cast<char*>(datum.data())};
        ASSERT_EQ(mdb_put(txn, dbi, &key, &value, 0), 0);
    }
    ASSERT_EQ(mdb_txn_commit(txn), 0);
}

TEST_F(LmdbQueueTest, ExpiredKeysAreSweptSoTheyDoNotFillTheMap) {
    auto queue = Open();
    ASSERT_TRUE(queue);
    // nginx gives every request its own X-Request-Id: each enqueue leaves a new key.
    queue->SetIdempotencyWindow(std::chrono::seconds(0));
    for (int i = 0; i < 20; ++i)
        ASSERT_TRUE(queue->Enqueue("short-lived", "expiring-" + std::to_string(i)).ok());
    // Expiry is kept to the second, rounded up: two seconds on, all twenty have expired.
    std::this_thread::sleep_for(std::chrono::milliseconds(2100));
    queue->SetIdempotencyWindow(std::chrono::seconds(3600));
    for (int i = 0; i < 5; ++i)
        ASSERT_TRUE(queue->Enqueue("kept", "live-" + std::to_string(i)).ok());
    EXPECT_EQ(queue->Enqueue("kept, retried", "live-0").value(), "21");  // still known
    queue.reset();
    RawEnv env(dir_.path() + "/multivac", MDB_RDONLY);
    EXPECT_EQ(env.Entries("keys"), 5);  // each enqueue swept up to 4 expired keys
    EXPECT_EQ(env.Entries("expiry"), 5);
}

TEST_F(LmdbQueueTest, KeepsNoProcessedDataAndPrunesWhatAnOlderVersionKeptInBatches) {
    {
        auto queue = Open();  // creates the env as this version does
        ASSERT_TRUE(queue);
        EXPECT_EQ(queue->PruneProcessed().value(), 0);  // a new store has nothing to prune
    }
    const int legacy = 2 * static_cast<int>(DataQueue::kPruneBatch) + 500;
    WriteLegacyProcessed(dir_.path() + "/multivac", legacy);
    auto queue = Open();
    ASSERT_TRUE(queue);
    ASSERT_TRUE(queue->Enqueue("new", "").ok());
    auto datum = queue->Claim(std::chrono::milliseconds(0));
    ASSERT_TRUE(datum.ok() && datum.value());
    ASSERT_TRUE(queue->Complete(*datum.value()).ok());
    EXPECT_EQ(queue->PruneProcessed().value(), DataQueue::kPruneBatch);
    EXPECT_EQ(queue->PruneProcessed().value(), DataQueue::kPruneBatch);
    EXPECT_EQ(queue->PruneProcessed().value(), 500);  // the rest, and the database dropped
    EXPECT_EQ(queue->PruneProcessed().value(), 0);
    EXPECT_EQ(queue->First().value(), std::optional<std::string>("new"));
    queue.reset();
    // Dropped: a reopened queue finds no "processed" database at all.
    RawEnv env(dir_.path() + "/multivac", MDB_RDONLY);
    ASSERT_NE(env.get(), nullptr);
    EXPECT_EQ(env.Entries("processed"), -1);
    EXPECT_EQ(env.Entries("queue"), 0);
}

TEST_F(LmdbQueueTest, SurvivesReopenAndNeverReusesIds) {
    {
        auto queue = Open();
        ASSERT_TRUE(queue);
        ASSERT_TRUE(queue->Enqueue("kept", "").ok());
        auto datum = queue->Claim(std::chrono::milliseconds(0));
        ASSERT_TRUE(datum.ok() && datum.value());
        ASSERT_TRUE(queue->Complete(*datum.value()).ok());
        ASSERT_TRUE(queue->Enqueue("still queued", "").ok());
    }
    auto queue = Open();
    ASSERT_TRUE(queue);
    EXPECT_EQ(queue->First().value(), std::optional<std::string>("kept"));
    EXPECT_EQ(queue->Stats().value().depth, 1);
    EXPECT_EQ(queue->Enqueue("after reopen", "").value(), "3");
}

TEST(WorkerMetrics, FormatAndParseRoundTrip) {
    WorkerCounters counters;
    counters.processed = 7;
    counters.failed = 2;
    counters.Observe(0.0005);
    counters.Observe(0.03);
    counters.Observe(100);
    double heartbeat = 0;
    WorkerCounters back = ParseWorkerMetrics(FormatWorkerMetrics(counters, 1234.5), &heartbeat);
    EXPECT_EQ(back.processed, 7u);
    EXPECT_EQ(back.failed, 2u);
    EXPECT_EQ(back.buckets, counters.buckets);
    EXPECT_DOUBLE_EQ(back.duration_sum, counters.duration_sum);
    EXPECT_DOUBLE_EQ(heartbeat, 1234.5);
    const std::string text = FormatWorkerMetrics(counters, 1);
    EXPECT_NE(text.find("hashd_worker_processing_duration_seconds_bucket{le=\"0.0025\"} 1\n"),
              std::string::npos);
    EXPECT_NE(text.find("hashd_worker_processing_duration_seconds_count 3\n"), std::string::npos);
}

TEST(Worker, ProcessesTheBacklogKeepsCountersAcrossRestartsAndLogsNoData) {
    TempDir dir;
    Harness h;
    h.config.runtime_dir = dir.path();
    auto& queue = h.store.queue;
    ASSERT_TRUE(queue.Enqueue("alpha", "").ok());
    ASSERT_TRUE(queue.Enqueue("beta", "").ok());
    const Logger logger(LogTarget::kStderr, "hashd-worker");
    const std::string path = WorkerMetricsPath(h.config);
    for (int run = 0; run < 2; ++run) {
        std::atomic<bool> stop{false};
        Worker worker(queue, logger, "memory", path);
        std::thread stopper([&] {
            for (int i = 0; i < 400 && queue.Stats().value().depth > 0; ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
            stop = true;
        });
        ::testing::internal::CaptureStderr();
        worker.Run(stop, [] {});
        const std::string log = ::testing::internal::GetCapturedStderr();
        stopper.join();
        EXPECT_EQ(log.find("alpha"), std::string::npos);
        EXPECT_EQ(log.find("beta"), std::string::npos);
        if (run == 0) {
            EXPECT_NE(log.find(R"("DATUM_ID":"1")"), std::string::npos);
            ASSERT_TRUE(queue.Enqueue("gamma", "").ok());
        }
    }
    EXPECT_EQ(queue.first, std::optional<std::string>("alpha"));
    EXPECT_EQ(queue.processed.size(), 3u);
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(ParseWorkerMetrics(text.str(), nullptr).processed, 3u);

    h.store.down = true;
    auto metrics = HandleMetrics(Request{}, h.services);
    ASSERT_TRUE(metrics.ok());
    EXPECT_NE(metrics.value().body.find("hashd_worker_processed_total 3\n"), std::string::npos);
}

}  // namespace
}  // namespace hashd
