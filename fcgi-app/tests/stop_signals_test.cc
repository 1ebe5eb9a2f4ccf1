#include "daemon/stop_signals.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

namespace hashd {
namespace {

using namespace std::chrono_literals;

// Each test runs in a child process: blocking SIGTERM in the test runner would leak into every
// process a later test starts (the mask survives fork and exec). The child's exit code is a
// set of failure bits; death by a signal is a failure too (a stop signal that was not taken).
int InChild(const std::function<int()>& body) {
    const pid_t child = fork();
    if (child == 0) _exit(body());
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child) return -1;
    if (WIFSIGNALED(status)) return 1000 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

bool WaitFor(const std::atomic<bool>& flag) {
    for (int i = 0; i < 500 && !flag.load(); ++i) std::this_thread::sleep_for(10ms);
    return flag.load();
}

TEST(StopSignals, TermAndIntAreTheStopSignalsAndHupIsNot) {
    EXPECT_EQ(InChild([] {
                  auto signals = BlockStopSignals();
                  if (!signals.ok()) return 1;
                  int code = 0;
                  if (!signals.value().Contains(SIGTERM)) code |= 2;
                  if (!signals.value().Contains(SIGINT)) code |= 4;
                  if (signals.value().Contains(SIGHUP)) code |= 8;
                  // Ignored: a write to a closed socket must not end the process.
                  raise(SIGPIPE);
                  return code;
              }),
              0);
}

class StopSignalsEach : public testing::TestWithParam<int> {};

TEST_P(StopSignalsEach, ASignalRequestsTheStopAndRunsOnStopOnce) {
    const int sent = GetParam();
    EXPECT_EQ(InChild([sent] {
                  auto signals = BlockStopSignals();
                  if (!signals.ok()) return 1;
                  std::atomic<int> calls{0};
                  std::atomic<int> received{0};
                  std::atomic<bool> saw_stop_first{false};
                  int code = 0;
                  {
                      StopSignalWaiter waiter(signals.value(), [&](int signal_number) {
                          received = signal_number;
                          saw_stop_first = waiter.stop_requested().load();
                          ++calls;
                      });
                      if (waiter.stop_requested().load()) code |= 2;
                      kill(getpid(), sent);  // to the process, as systemd and spawn-fcgi do
                      if (!WaitFor(waiter.stop_requested())) code |= 4;
                      for (int i = 0; i < 500 && calls.load() == 0; ++i)
                          std::this_thread::sleep_for(10ms);
                      kill(getpid(), sent);  // a second one changes nothing
                      std::this_thread::sleep_for(50ms);
                  }
                  if (calls.load() != 1) code |= 8;
                  if (received.load() != sent) code |= 16;
                  if (!saw_stop_first.load()) code |= 32;
                  return code;
              }),
              0)
        << "2: stop before a signal, 4: no stop, 8: on_stop not once, 16: wrong signal, "
           "32: on_stop before the stop request, 1000+n: died of signal n";
}

INSTANTIATE_TEST_SUITE_P(TermAndInt, StopSignalsEach, testing::Values(SIGTERM, SIGINT));

TEST(StopSignals, AWaiterDestroyedWithoutASignalNeverRunsOnStop) {
    EXPECT_EQ(InChild([] {
                  auto signals = BlockStopSignals();
                  if (!signals.ok()) return 1;
                  std::atomic<int> calls{0};
                  const auto start = std::chrono::steady_clock::now();
                  {
                      StopSignalWaiter waiter(signals.value(), [&](int) { ++calls; });
                      std::this_thread::sleep_for(20ms);
                  }
                  int code = 0;
                  if (calls.load() != 0) code |= 2;
                  if (std::chrono::steady_clock::now() - start > 5s) code |= 4;
                  // No waiter now: the signal stays pending instead of ending the process.
                  kill(getpid(), SIGTERM);
                  std::this_thread::sleep_for(20ms);
                  return code;
              }),
              0)
        << "2: on_stop ran, 4: the destructor waited, 1000+n: died of signal n";
}

}  // namespace
}  // namespace hashd
