#include "api/router.h"

#include <gtest/gtest.h>

#include "core/json.h"
#include "test_support.h"

namespace hashd {
namespace {

using testing::Get;
using testing::Harness;
using testing::Serve;

std::string ErrorCode(const Response& response) {
    auto parsed = ParseJsonObject(response.body);
    return parsed.ok() ? parsed.value()["error"].asString() : "";
}

TEST(CanonicalPath, AcceptsEveryRouteAndAnEncodedLegacyPassword) {
    for (const char* path :
         {"/", "/v1/hash", "/messages", "/messages/2c26b46b", "/healthz", "/gethash/hunter2/",
          "/gethash/hunter2", "/gethash/p%40ss%20w/", "/gethash/a.b/", "/gethash/%2e%2e%2e/",
          "/nope/", "/messages/2c26%", "/messages/%41%42"})
        EXPECT_TRUE(IsCanonicalPath(path)) << path;
}

TEST(CanonicalPath, RefusesWhatNginxWouldResolveDifferently) {
    for (const char* path :
         {"", "gethash/x/", "/gethash/../", "/gethash/..", "/gethash/./x/", "/gethash/%2e%2E/",
          "/gethash/.%2e/", "/gethash/..%2Fsecretpw/", "/gethash/..%2f..%2fetc%2fpasswd/",
          "/gethash/a%5Cb/", "/gethash/%00/", "//gethash/x/", "/gethash//x/", "/%67ethash/x/",
          "/gethash/a/b%41/", "/messages/a/%32c", "/%6dessages/x", "/v1/hash/../gethash/x/",
          "/healt%68z"})
        EXPECT_FALSE(IsCanonicalPath(path)) << path;
}

TEST(Router, NonCanonicalPathIsA400AndNeverHashed) {
    Harness h;
    for (const char* path : {"/gethash/..%2Fsecretpw/", "/gethash/../", "/%67ethash/pw/"}) {
        Dispatch d = RouteRequest(Get(path), h.services);
        EXPECT_EQ(d.response.status, 400) << path;
        EXPECT_EQ(ErrorCode(d.response), "invalid_path") << path;
        EXPECT_EQ(d.label, "unmatched") << path;
        EXPECT_EQ(FindRoute(Get(path)), nullptr) << path;
    }
    EXPECT_EQ(h.metrics.hashes, 0);
}

class CountingStore final : public MessageStore {
  public:
    std::string_view Backend() const override { return "counting"; }
    Status Put(std::string_view, std::string_view) override { return Ok{}; }
    Result<std::optional<std::string>> Get(std::string_view) override {
        return std::optional<std::string>{};
    }
    Status Check() override {
        ++checks;
        if (down) return Error{ErrorKind::kUnavailable, "store_unavailable", "down", 1};
        return Ok{};
    }
    DataQueue& Queue() override { return queue; }
    int checks = 0;
    bool down = false;

  private:
    std::atomic<bool> queue_down_{false};
    testing::MemoryQueue queue{queue_down_};
};

TEST(ReadinessCache, AsksTheStoreAtMostOncePerMaxAge) {
    CountingStore store;
    ReadinessCache::Clock::time_point now{};
    ReadinessCache cache(std::chrono::seconds(1), [&] { return now; });
    const auto check = [&] { return store.Check(); };
    for (int i = 0; i < 100; ++i) EXPECT_TRUE(cache.StoreStatus(check).ok());
    EXPECT_EQ(store.checks, 1);

    store.down = true;
    now += std::chrono::milliseconds(999);
    EXPECT_TRUE(cache.StoreStatus(check).ok()) << "a result younger than max_age is reused";
    now += std::chrono::milliseconds(1);
    EXPECT_FALSE(cache.StoreStatus(check).ok()) << "a stale result is refreshed";
    EXPECT_EQ(store.checks, 2);
    EXPECT_EQ(cache.StoreStatus(check).error().code, "store_unavailable");
    EXPECT_EQ(store.checks, 2);
}

// Behind Google's LB (issue 20): a shared store's outage must not take the VM out of the
// backend, or hashing stops on every VM at once. /readyz still names the store.
TEST(Readiness, ServingCheckIgnoresTheStoreButNotDraining) {
    Harness h;
    h.store.down = true;
    EXPECT_EQ(Serve(Get("/readyz"), h.services).status, 503);
    Response serving = Serve(Get("/readyz/serving"), h.services);
    EXPECT_EQ(serving.status, 200) << serving.body;
    EXPECT_NE(serving.body.find("serving"), std::string::npos);
    h.draining = true;
    serving = Serve(Get("/readyz/serving"), h.services);
    EXPECT_EQ(serving.status, 503);
    EXPECT_EQ(ErrorCode(serving), "draining");
}

TEST(ReadinessCache, ZeroMaxAgeAsksEveryTime) {
    CountingStore store;
    ReadinessCache cache(ReadinessCache::Clock::duration::zero());
    const auto check = [&] { return store.Check(); };
    for (int i = 0; i < 3; ++i) (void)cache.StoreStatus(check);
    EXPECT_EQ(store.checks, 3);
}

// Issue 21 finding 1: /readyz's and /metrics's store calls go through TimedStore (which
// passes the accept turn on before a network store call), so they are measured like any other.
TEST(StoreCalls, ReadyzAndMetricsAreMeasuredStoreOperations) {
    testing::Harness h;
    EXPECT_EQ(testing::Serve(testing::Get("/readyz"), h.services).status, 200);
    EXPECT_EQ(h.metrics.store_ops, std::vector<std::string>{"check"});
    h.metrics.store_ops.clear();
    EXPECT_EQ(testing::Serve(testing::Get("/metrics"), h.services).status, 200);
    EXPECT_EQ(h.metrics.store_ops, std::vector<std::string>{"stats"});
    h.store.down = true;
    EXPECT_EQ(testing::Serve(testing::Get("/readyz"), h.services).status, 503);
    EXPECT_EQ(h.metrics.store_errors, 1) << "a failing check is a store error";
}

}  // namespace
}  // namespace hashd
