#include "api/client_budget.h"

#include <gtest/gtest.h>

namespace hashd {
namespace {

using namespace std::chrono_literals;

TEST(ClientBudget, CountsWorkNotRequests) {
    EXPECT_DOUBLE_EQ(ClientBudget::Units(12), 1.0);
    EXPECT_DOUBLE_EQ(ClientBudget::Units(14), 4.0);
    EXPECT_DOUBLE_EQ(ClientBudget::Units(10), 0.25);

    ClientBudget budget(10, 20);
    const auto t = ClientBudget::Clock::time_point{} + 1h;
    // 20 units banked: five cost-14 hashes fit, the sixth does not; at cost 12 twenty fit.
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(budget.Charge("a", ClientBudget::Units(14), t).allowed);
    const auto refused = budget.Charge("a", ClientBudget::Units(14), t);
    EXPECT_FALSE(refused.allowed);
    EXPECT_EQ(refused.retry_after, 400ms) << "4 units at 10 a second";
    for (int i = 0; i < 20; ++i) EXPECT_TRUE(budget.Charge("b", 1.0, t).allowed) << i;
    EXPECT_FALSE(budget.Charge("b", 1.0, t).allowed);
    // Refills at the rate; a refund gives back.
    EXPECT_TRUE(budget.Charge("a", 4.0, t + 400ms).allowed);
    budget.Refund("a", 4.0);
    EXPECT_TRUE(budget.Charge("a", 4.0, t + 400ms).allowed);
    EXPECT_FALSE(budget.Charge("a", 4.0, t + 400ms).allowed);
}

TEST(ClientBudget, RateZeroIsOffAndMemoryIsBounded) {
    ClientBudget off(0, 0);
    const auto t = ClientBudget::Clock::time_point{} + 1h;
    for (int i = 0; i < 100; ++i) EXPECT_TRUE(off.Charge("a", 1000.0, t).allowed);
    ClientBudget budget(10, 20);
    for (std::size_t i = 0; i < 3 * ClientBudget::kMaxClients; ++i)
        EXPECT_TRUE(budget.Charge("client-" + std::to_string(i), 1.0, t).allowed);
    // A client that is over budget stays so while the map churns (it is not the one evicted
    // first: the least recently touched is).
    for (int i = 0; i < 20; ++i) (void)budget.Charge("heavy", 1.0, t);
    EXPECT_FALSE(budget.Charge("heavy", 1.0, t).allowed);
}

TEST(ClientBudget, WorkLargerThanTheBurstRunsFromAFullBucketOnly) {
    ClientBudget budget(10, 20);
    const auto t = ClientBudget::Clock::time_point{} + 1h;
    // Cost 17 is 32 units, more than the burst: it runs when the bucket is full (else it could
    // never run), leaving a debt that the next requests wait out.
    EXPECT_TRUE(budget.Charge("a", ClientBudget::Units(17), t).allowed);
    const auto next = budget.Charge("a", 1.0, t);
    EXPECT_FALSE(next.allowed);
    EXPECT_EQ(next.retry_after, 1300ms) << "12 units of debt plus 1, at 10 a second";
}

}  // namespace
}  // namespace hashd
