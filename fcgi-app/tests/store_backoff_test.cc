#include <gtest/gtest.h>

#include "store/backoff.h"

namespace hashd {
namespace {

using std::chrono::milliseconds;

TEST(StoreBackoff, ReadyUntilAFailure) {
    Backoff backoff;
    const auto t0 = Backoff::Clock::now();
    EXPECT_TRUE(backoff.Ready(t0));
    backoff.Failed(t0);
    EXPECT_FALSE(backoff.Ready(t0));
    EXPECT_FALSE(backoff.Ready(t0 + Backoff::kInitial - milliseconds(1)));
    EXPECT_TRUE(backoff.Ready(t0 + Backoff::kInitial * 5 / 4 + milliseconds(1)));
    EXPECT_EQ(backoff.RetryAfterSeconds(t0), 1);
}

TEST(StoreBackoff, DelayDoublesUpToTheCapAndASuccessResetsIt) {
    Backoff backoff;
    auto t = Backoff::Clock::now();
    for (int i = 0; i < 20; ++i) {
        backoff.Failed(t);
        t += Backoff::kMax * 2;  // well past any delay
    }
    backoff.Failed(t);
    EXPECT_FALSE(backoff.Ready(t + Backoff::kMax - milliseconds(1))) << "capped at kMax";
    EXPECT_TRUE(backoff.Ready(t + Backoff::kMax * 5 / 4 + milliseconds(1)));
    EXPECT_GE(backoff.RetryAfterSeconds(t), 2);

    backoff.Succeeded();
    EXPECT_TRUE(backoff.Ready(t));
    backoff.Failed(t);
    EXPECT_TRUE(backoff.Ready(t + Backoff::kInitial * 5 / 4 + milliseconds(1)));
}

}  // namespace
}  // namespace hashd
