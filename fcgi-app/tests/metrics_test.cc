#include "metrics/metrics.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "api/router.h"
#include "metrics/layout.h"
#include "metrics/region.h"

namespace hashd {
namespace {

// A private runtime directory per test, removed afterwards.
class MetricsTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char pattern[] = "/tmp/hashd-metrics-test-XXXXXX";
        ASSERT_NE(mkdtemp(pattern), nullptr);
        dir_ = pattern;
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    std::unique_ptr<Metrics> Open(int instance, int slots = 8) {
        Config config;
        config.runtime_dir = dir_;
        config.instance = instance;
        config.metrics_slots = slots;
        auto metrics = Metrics::Open(config, RouteKeys());
        EXPECT_TRUE(metrics.ok()) << (metrics.ok() ? "" : metrics.error().message);
        return metrics.ok() ? std::move(metrics).value() : nullptr;
    }

    std::string dir_;
};

// The value of one sample line ("name{labels}" exactly as rendered), or -1 when absent.
double Sample(const std::string& text, const std::string& series) {
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);)
        if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
    return -1;
}

const std::string kHashOk = R"(hashd_requests_total{route="/v1/hash",method="POST",status="200"})";

TEST_F(MetricsTest, TwoProcessesCountIntoOneRender) {
    auto one = Open(1);
    auto two = Open(2);
    ASSERT_TRUE(one && two);
    one->RecordRequest("/v1/hash", "POST", 200, 0.2);
    two->RecordRequest("/v1/hash", "POST", 200, 0.3);
    two->RecordRequest("/v1/hash", "POST", 200, 0.3);
    two->RecordRequest("unmatched", "GET", 404, 0.0001);
    one->RecordQueueWait(0.003);
    two->RecordHash(12, 0.22);

    // Whichever process answers the scrape, it reports the pool.
    for (const Metrics* m : {one.get(), two.get()}) {
        const std::string text = m->Render();
        EXPECT_EQ(Sample(text, kHashOk), 3);
        EXPECT_EQ(
            Sample(text, R"(hashd_requests_total{route="unmatched",method="GET",status="404"})"),
            1);
        EXPECT_EQ(Sample(text, R"(hashd_request_duration_seconds_count{route="/v1/hash"})"), 3);
        EXPECT_DOUBLE_EQ(Sample(text, R"(hashd_request_duration_seconds_sum{route="/v1/hash"})"),
                         0.8);
        EXPECT_EQ(Sample(text, "hashd_queue_wait_seconds_count"), 1);
        EXPECT_EQ(Sample(text, R"(hashd_queue_wait_seconds_bucket{le="0.0025"})"), 0);
        EXPECT_EQ(Sample(text, R"(hashd_queue_wait_seconds_bucket{le="0.005"})"), 1);
        EXPECT_EQ(Sample(text, R"(hashd_hash_duration_seconds_bucket{cost="12",le="0.128"})"), 0);
        EXPECT_EQ(Sample(text, R"(hashd_hash_duration_seconds_bucket{cost="12",le="0.256"})"), 1);
        EXPECT_EQ(Sample(text, "hashd_processes"), 2);
    }
}

TEST_F(MetricsTest, ARestartedProcessKeepsItsCountersAndDropsItsGauges) {
    auto first = Open(1);
    ASSERT_TRUE(first);
    first->RecordRequest("/v1/hash", "POST", 200, 0.1);
    first->RecordLegacyGet();
    first->RecordShed("queue_deadline");
    first->AddInflight(2);
    first->AddBusyWorkers(2);
    first->SetWorkers(4);
    EXPECT_EQ(Sample(first->Render(), "hashd_workers_busy"), 2);
    first.reset();  // the process dies

    auto again = Open(1);
    ASSERT_TRUE(again);
    again->RecordRequest("/v1/hash", "POST", 200, 0.1);
    const std::string text = again->Render();
    EXPECT_EQ(Sample(text, kHashOk), 2);
    EXPECT_EQ(Sample(text, "hashd_legacy_get_requests_total"), 1);
    EXPECT_EQ(Sample(text, R"(hashd_shed_requests_total{reason="queue_deadline"})"), 1);
    EXPECT_EQ(Sample(text, "hashd_inflight_requests"), 0);
    EXPECT_EQ(Sample(text, "hashd_workers_busy"), 0);
    EXPECT_EQ(Sample(text, "hashd_workers"), 0);
    EXPECT_EQ(Sample(text, "hashd_process_starts_total"), 2);
}

TEST_F(MetricsTest, GaugesCountOnlyLiveProcessesButCountersStay) {
    auto one = Open(1);
    auto two = Open(2);
    ASSERT_TRUE(one && two);
    one->SetWorkers(2);
    two->SetWorkers(2);
    two->AddBusyWorkers(1);
    two->AddInflight(1);
    two->RecordRequest("/messages", "POST", 201, 0.001);
    std::string text = one->Render();
    EXPECT_EQ(Sample(text, "hashd_workers"), 4);
    EXPECT_EQ(Sample(text, "hashd_workers_busy"), 1);
    EXPECT_EQ(Sample(text, "hashd_inflight_requests"), 1);

    two.reset();  // killed mid-request: its gauges must not stick
    text = one->Render();
    EXPECT_EQ(Sample(text, "hashd_workers"), 2);
    EXPECT_EQ(Sample(text, "hashd_workers_busy"), 0);
    EXPECT_EQ(Sample(text, "hashd_inflight_requests"), 0);
    EXPECT_EQ(Sample(text, "hashd_processes"), 1);
    EXPECT_EQ(Sample(text, R"(hashd_requests_total{route="/messages",method="POST",status="201"})"),
              1);
}

TEST_F(MetricsTest, ConcurrentIncrementsFromThreadsAndProcessesAreAllCounted) {
    auto one = Open(1);
    auto two = Open(2);
    ASSERT_TRUE(one && two);
    constexpr int kThreads = 4, kEach = 20000;
    {
        std::vector<std::jthread> threads;
        for (int t = 0; t < kThreads; ++t)
            threads.emplace_back([&, t] {
                Metrics& m = t % 2 == 0 ? *one : *two;
                for (int i = 0; i < kEach; ++i) {
                    m.RecordRequest("/v1/hash", "POST", 200, 0.001);
                    m.AddInflight(1);
                    m.AddInflight(-1);
                }
            });
    }
    const std::string text = two->Render();
    EXPECT_EQ(Sample(text, kHashOk), kThreads * kEach);
    EXPECT_EQ(Sample(text, R"(hashd_request_duration_seconds_count{route="/v1/hash"})"),
              kThreads * kEach);
    EXPECT_EQ(Sample(text, "hashd_inflight_requests"), 0);
}

TEST_F(MetricsTest, ProcessesStartingTogetherShareOneRegion) {
    constexpr int kProcesses = 8;
    std::vector<std::unique_ptr<Metrics>> opened(kProcesses);
    {
        std::vector<std::jthread> threads;
        for (int i = 0; i < kProcesses; ++i)
            threads.emplace_back([&, i] {
                opened[i] = Open(i + 1);
                if (opened[i]) opened[i]->RecordRequest("/healthz", "GET", 200, 0.0001);
            });
    }
    for (const auto& m : opened) ASSERT_TRUE(m);
    const std::string text = opened[0]->Render();
    EXPECT_EQ(Sample(text, R"(hashd_requests_total{route="/healthz",method="GET",status="200"})"),
              kProcesses);
    EXPECT_EQ(Sample(text, "hashd_processes"), kProcesses);
}

TEST_F(MetricsTest, AnIncompatibleRegionIsReplacedWithoutDisturbingItsUsers) {
    auto old = Open(1);
    ASSERT_TRUE(old);
    old->RecordRequest("/v1/hash", "POST", 200, 0.1);
    // What a binary with another layout would find: a header it does not recognize.
    const std::string path = dir_ + "/metrics.shm";
    const int fd = open(path.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, "not-hashd", 9, 0), 9);
    close(fd);

    auto fresh = Open(2);
    ASSERT_TRUE(fresh);
    EXPECT_EQ(Sample(fresh->Render(), kHashOk), -1);   // a new region, counting from zero
    old->RecordRequest("/v1/hash", "POST", 200, 0.1);  // the old mapping still works
    EXPECT_EQ(Sample(old->Render(), kHashOk), 2);
}

// A header whose slot count makes header + slots * slot size wrap around 2^64 to the size of
// a small file would map a few bytes and then index far past them.
metrics::RegionHeader WrappingHeader() {
    const std::uint64_t slot_bytes = metrics::MakeLayout(RouteKeys()).slot_bytes;
    metrics::RegionHeader header = metrics::ExpectedHeader(metrics::MakeLayout(RouteKeys()), 4);
    header.slot_count = std::uint64_t{1} << (64 - std::countr_zero(slot_bytes));
    header.total_bytes = metrics::kHeaderBytes + header.slot_count * slot_bytes;  // wraps
    return header;
}

TEST_F(MetricsTest, AHeaderIsCheckedForOverflowBeforeItIsTrusted) {
    const metrics::RegionHeader wrapping = WrappingHeader();
    const metrics::Layout layout = metrics::MakeLayout(RouteKeys());
    EXPECT_EQ(wrapping.total_bytes, metrics::kHeaderBytes);
    EXPECT_FALSE(metrics::HeaderUsable(layout, wrapping, 1 << 20, 1));
    EXPECT_TRUE(metrics::HeaderUsable(layout, metrics::ExpectedHeader(layout, 4), 1 << 20, 1));
    // A file too short, an instance without a slot:
    EXPECT_FALSE(metrics::HeaderUsable(layout, metrics::ExpectedHeader(layout, 4), 4096, 1));
    EXPECT_FALSE(metrics::HeaderUsable(layout, metrics::ExpectedHeader(layout, 4), 1 << 20, 5));

    // The same header on disk: the region is replaced, and a scrape works.
    const std::string path = dir_ + "/metrics.shm";
    const int fd = open(path.c_str(), O_RDWR | O_CREAT, 0640);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, &wrapping, sizeof(wrapping), 0), static_cast<ssize_t>(sizeof(wrapping)));
    ASSERT_EQ(ftruncate(fd, 8192), 0);
    close(fd);
    auto m = Open(1);
    ASSERT_TRUE(m);
    m->RecordLegacyGet();
    EXPECT_EQ(Sample(m->Render(), "hashd_legacy_get_requests_total"), 1);
}

TEST_F(MetricsTest, AnInstanceBeyondTheRegionsSlotsGetsABiggerRegion) {
    auto small = Open(1, 2);
    ASSERT_TRUE(small);
    auto big = Open(5, 8);
    ASSERT_TRUE(big);
    big->RecordLegacyGet();
    EXPECT_EQ(Sample(big->Render(), "hashd_legacy_get_requests_total"), 1);
}

TEST_F(MetricsTest, TheSameInstanceTwiceIsRefused) {
    auto first = Open(3);
    ASSERT_TRUE(first);
    Config config;
    config.runtime_dir = dir_;
    config.instance = 3;
    config.metrics_slots = 8;
    auto second = Metrics::Open(config, RouteKeys());
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.error().code, "metrics_slot_taken");
}

TEST_F(MetricsTest, AMissingRuntimeDirectoryIsAnError) {
    Config config;
    config.runtime_dir = dir_ + "/missing";
    auto metrics = Metrics::Open(config, RouteKeys());
    ASSERT_FALSE(metrics.ok());
    EXPECT_NE(metrics.error().message.find("missing/metrics.shm"), std::string::npos);
}

TEST_F(MetricsTest, ErrorSeriesExistBeforeTheFirstError) {
    // Prometheus does not count a series' first sample as an increase, so the series that
    // error alerts use must be there, at 0, from the start.
    auto m = Open(1);
    ASSERT_TRUE(m);
    const std::string text = m->Render();
    for (const char* series :
         {R"(hashd_requests_total{route="/v1/hash",method="POST",status="500"})",
          R"(hashd_requests_total{route="/messages/:digest",method="GET",status="503"})",
          R"(hashd_store_operations_total{backend="lmdb",op="put",result="error"})",
          R"(hashd_shed_requests_total{reason="queue_deadline"})",
          "hashd_queue_wait_seconds_count"})
        EXPECT_EQ(Sample(text, series), 0) << series;
    // Pairs the router does not serve appear only once they happen.
    EXPECT_EQ(text.find(R"(route="/v1/hash",method="GET")"), std::string::npos);
    EXPECT_EQ(text.find(R"(backend="redis")"), std::string::npos);
}

TEST_F(MetricsTest, EveryStatusTheServiceAnswersIsItsOwnSeries) {
    // 507 (the LMDB map is full) once fell into status="other", out of the 5xx alert's sight.
    auto m = Open(1);
    ASSERT_TRUE(m);
    m->RecordRequest("/messages", "POST", 507, 0.001);
    const std::string text = m->Render();
    EXPECT_EQ(Sample(text, R"(hashd_requests_total{route="/messages",method="POST",status="507"})"),
              1);
    EXPECT_EQ(text.find(R"(status="other")"), std::string::npos);
}

TEST_F(MetricsTest, UnknownLabelValuesFallIntoOther) {
    auto m = Open(1);
    ASSERT_TRUE(m);
    m->RecordRequest("/some/raw/path", "BREW", 299, 0.01);
    m->RecordStore("memory", "scan", false, 0.01);
    m->RecordShed("mystery");
    m->RecordHash(99, 1.0);  // outside bcrypt's range: not a cost, not recorded
    const std::string text = m->Render();
    EXPECT_EQ(Sample(text, R"(hashd_requests_total{route="other",method="OTHER",status="other"})"),
              1);
    EXPECT_EQ(
        Sample(text, R"(hashd_store_operations_total{backend="other",op="other",result="error"})"),
        1);
    EXPECT_EQ(Sample(text, R"(hashd_shed_requests_total{reason="other"})"), 1);
    EXPECT_EQ(text.find("cost=\"99\""), std::string::npos);
}

// The text exposition format, checked line by line: HELP and TYPE before a family's samples,
// valid names and labels, one family per name, cumulative buckets ending in +Inf == _count.
TEST_F(MetricsTest, RenderIsValidPrometheusText) {
    auto m = Open(1);
    ASSERT_TRUE(m);
    m->RecordRequest("/v1/hash", "POST", 200, 0.2);
    m->RecordRequest("/v1/hash", "POST", 400, 0.001);
    m->RecordHash(4, 0.0009);
    m->RecordHash(12, 0.21);
    m->RecordQueueWait(20);  // beyond the last bucket: only +Inf
    m->RecordStore("lmdb", "put", true, 0.0002);
    m->RecordStore("lmdb", "get", false, 0.5);
    m->RecordShed("queue_deadline");
    m->RecordLegacyGet();
    const std::string text = m->Render();

    const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*)");
    const std::regex type(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram))");
    const std::regex sample(
        R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*)\})? (-?[0-9.e+-]+|\+Inf))");
    std::map<std::string, std::string> types;
    std::set<std::string> helped, series;
    std::string current;
    std::map<std::string, double> last_bucket;  // per histogram series (labels without le)
    std::istringstream lines(text);
    std::smatch match;
    for (std::string line; std::getline(lines, line);) {
        SCOPED_TRACE(line);
        if (std::regex_match(line, match, help)) {
            EXPECT_TRUE(helped.insert(match[1]).second) << "HELP twice";
        } else if (std::regex_match(line, match, type)) {
            EXPECT_TRUE(helped.count(match[1])) << "TYPE without HELP";
            EXPECT_TRUE(types.emplace(match[1], match[2]).second) << "family twice";
            current = match[1];
        } else if (std::regex_match(line, match, sample)) {
            const std::string name = match[1];
            std::string family = name;
            for (const char* suffix : {"_bucket", "_sum", "_count"})
                if (types[current] == "histogram" && name == current + suffix) family = current;
            EXPECT_EQ(family, current) << "sample outside its family";
            EXPECT_TRUE(series.insert(name + "{" + std::string(match[3]) + "}").second)
                << "duplicate series";
            if (types[current] == "counter") {
                EXPECT_TRUE(name.ends_with("_total"));
            }
            const double value = std::stod(match[5]);
            const std::string labels =
                std::regex_replace(std::string(match[3]), std::regex(R"(,?le="[^"]*")"), "");
            if (name.ends_with("_bucket")) {
                EXPECT_GE(value, last_bucket[labels]) << "buckets must be cumulative";
                last_bucket[labels] = value;
                EXPECT_NE(std::string(match[3]).find("le="), std::string::npos);
            }
            if (name.ends_with("_count") && types[current] == "histogram") {
                EXPECT_EQ(value, last_bucket[labels]) << "+Inf bucket must equal _count";
                last_bucket.erase(labels);
            }
        } else {
            ADD_FAILURE() << "not exposition format";
        }
    }
    for (const char* family :
         {"hashd_requests_total", "hashd_request_duration_seconds", "hashd_hash_duration_seconds",
          "hashd_queue_wait_seconds", "hashd_inflight_requests", "hashd_workers_busy",
          "hashd_workers", "hashd_shed_requests_total", "hashd_store_operations_total",
          "hashd_store_duration_seconds", "hashd_legacy_get_requests_total",
          "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
          "process_start_time_seconds", "hashd_build_info"})
        EXPECT_TRUE(types.count(family)) << family;
    EXPECT_EQ(Sample(text, R"(hashd_queue_wait_seconds_bucket{le="10"})"), 0);
    EXPECT_EQ(Sample(text, R"(hashd_queue_wait_seconds_bucket{le="+Inf"})"), 1);
    // A route with traffic always shows its 5xx series, so alerts see the first error.
    EXPECT_EQ(Sample(text, R"(hashd_requests_total{route="/v1/hash",method="POST",status="500"})"),
              0);
    EXPECT_EQ(
        Sample(text, R"(hashd_store_operations_total{backend="lmdb",op="get",result="error"})"), 1);
    EXPECT_EQ(
        Sample(text, R"(hashd_store_operations_total{backend="lmdb",op="put",result="error"})"), 0);
    EXPECT_GT(Sample(text, "process_resident_memory_bytes"), 0);
    EXPECT_GT(Sample(text, "process_open_fds"), 0);
    EXPECT_GT(Sample(text, "process_start_time_seconds"), 1.6e9);
}

}  // namespace
}  // namespace hashd
