#include "daemon/watchdog.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

namespace hashd {
namespace {

using namespace std::chrono_literals;

TEST(WatchdogInterval, IsHalfThePeriodAndNoneWithoutOne) {
    EXPECT_EQ(WatchdogPingInterval(30'000'000), std::chrono::microseconds(15s));
    EXPECT_EQ(WatchdogPingInterval(3), std::chrono::microseconds(1));
    EXPECT_EQ(WatchdogPingInterval(1), std::chrono::microseconds(0));  // every turn, not none
    EXPECT_EQ(WatchdogPingInterval(0), std::nullopt);
}

// Sets systemd's two variables for the duration of a test.
class WatchdogEnvironment : public testing::Test {
  protected:
    void TearDown() override {
        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
    }
    static void Set(const std::string& usec, const std::string& pid) {
        setenv("WATCHDOG_USEC", usec.c_str(), 1);
        setenv("WATCHDOG_PID", pid.c_str(), 1);
    }
};

TEST_F(WatchdogEnvironment, ReadsThisProcesssPeriod) {
    Set("4000000", std::to_string(getpid()));
    EXPECT_EQ(WatchdogPingIntervalFromEnvironment(), std::chrono::microseconds(2s));
}

TEST_F(WatchdogEnvironment, NoneForAnotherProcessAnInvalidValueOrNoVariable) {
    Set("4000000", std::to_string(getpid() + 1));
    EXPECT_EQ(WatchdogPingIntervalFromEnvironment(), std::nullopt);
    Set("four seconds", std::to_string(getpid()));
    EXPECT_EQ(WatchdogPingIntervalFromEnvironment(), std::nullopt);
    TearDown();
    EXPECT_EQ(WatchdogPingIntervalFromEnvironment(), std::nullopt);
}

TEST(WatchdogPinger, PingsAtOnceThenAtMostOncePerInterval) {
    int pings = 0;
    WatchdogPinger pinger(std::chrono::microseconds(10s), [&] { ++pings; });
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(pinger.Alive(t0));
    EXPECT_FALSE(pinger.Alive(t0 + 5s));
    EXPECT_FALSE(pinger.Alive(t0 + 9999ms));
    EXPECT_TRUE(pinger.Alive(t0 + 10s));
    EXPECT_FALSE(pinger.Alive(t0 + 19s));  // counted from the last ping, not from t0
    EXPECT_TRUE(pinger.Alive(t0 + 20s));
    EXPECT_EQ(pings, 3);
}

TEST(WatchdogPinger, NeverPingsWithoutAWatchdog) {
    int pings = 0;
    WatchdogPinger pinger(std::nullopt, [&] { ++pings; });
    EXPECT_FALSE(pinger.Alive());
    EXPECT_FALSE(pinger.Alive(std::chrono::steady_clock::now() + 1h));
    EXPECT_EQ(pings, 0);
}

TEST(WatchdogThread, PingsRepeatedlyWhileHealthyAndNotWhenNot) {
    std::atomic<int> pings{0};
    std::atomic<bool> healthy{true};
    {
        WatchdogThread watchdog(
            std::chrono::microseconds(2ms), [&] { return healthy.load(); }, [&] { ++pings; });
        for (int i = 0; i < 500 && pings.load() < 3; ++i) std::this_thread::sleep_for(10ms);
        EXPECT_GE(pings.load(), 3);
        healthy = false;
        std::this_thread::sleep_for(20ms);  // a ping in flight when the flag flipped lands
        const int before = pings.load();
        std::this_thread::sleep_for(50ms);
        EXPECT_EQ(pings.load(), before);
    }
}

TEST(WatchdogThread, PingsAtOnceAndStopsWithoutWaitingForTheInterval) {
    std::atomic<int> pings{0};
    const auto start = std::chrono::steady_clock::now();
    {
        WatchdogThread watchdog(
            std::chrono::microseconds(1h), [] { return true; }, [&] { ++pings; });
        for (int i = 0; i < 500 && pings.load() < 1; ++i) std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(pings.load(), 1);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(WatchdogThread, StartsNoThreadWithoutAWatchdog) {
    std::atomic<int> checks{0};
    {
        WatchdogThread watchdog(
            std::nullopt, [&] { return ++checks, true; }, [] {});
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(checks.load(), 0);
}

}  // namespace
}  // namespace hashd
