#include "server/accept_turn.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace hashd {
namespace {

using namespace std::chrono_literals;

TEST(AcceptTurn, OneHolderAtATimeAndTakingTwiceIsFree) {
    AcceptTurn turn;
    turn.Take();
    turn.Take();  // already held: must not deadlock
    std::atomic<bool> other_has_it{false};
    std::thread other([&] {
        turn.Take();
        other_has_it = true;
        turn.Pass();
    });
    std::this_thread::sleep_for(50ms);
    EXPECT_FALSE(other_has_it.load()) << "a second thread took a turn that was held";
    turn.Pass();
    other.join();
    EXPECT_TRUE(other_has_it.load());
}

TEST(AcceptTurn, BeforeBlockingHandsTheTurnToAWaitingThread) {
    AcceptTurn turn;
    turn.Take();
    turn.MarkBusy(std::chrono::steady_clock::now());
    std::atomic<bool> other_has_it{false};
    std::thread other([&] {
        turn.Take();
        other_has_it = true;
        turn.Pass();
    });
    BeforeBlocking();  // this thread is about to wait on I/O, still busy with its request
    other.join();      // would hang if the turn were still held here
    EXPECT_TRUE(other_has_it.load());
    EXPECT_EQ(turn.BusySince(), std::chrono::steady_clock::time_point{})
        << "the busy time left with the turn";
    turn.MarkBusy(std::chrono::steady_clock::now());  // not the holder any more: ignored
    EXPECT_EQ(turn.BusySince(), std::chrono::steady_clock::time_point{});
}

TEST(AcceptTurn, PassAndBeforeBlockingWithoutTheTurnDoNothing) {
    AcceptTurn turn;
    turn.Pass();
    BeforeBlocking();
    turn.Take();  // still free
    const auto since = std::chrono::steady_clock::now();
    turn.MarkBusy(since);
    EXPECT_EQ(turn.BusySince(), since);
    turn.Pass();
}

}  // namespace
}  // namespace hashd
