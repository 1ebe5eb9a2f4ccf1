#pragma once
// systemd's watchdog (WatchdogSec= in the units): a process that stops pinging within the
// period is killed (SIGABRT) and restarted. Each daemon pings only while it is healthy as it
// defines it, so a wedged process is exactly one that stops pinging: hashd-fcgi from a thread
// while no request has held a worker for a minute (WatchdogThread), hashd-worker from its
// queue loop itself, so a loop stuck in a store call stops the pings (WatchdogPinger). Both
// ping at half the period: one late wake-up (a loaded VM) then still pings in time.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

namespace hashd {

// The ping interval for a watchdog period of `watchdog_usec` microseconds: half of it. nullopt
// for 0 (no watchdog).
std::optional<std::chrono::microseconds> WatchdogPingInterval(uint64_t watchdog_usec);

// The ping interval for this process, from WATCHDOG_USEC and WATCHDOG_PID as systemd sets them
// (sd_watchdog_enabled(3)). nullopt when systemd runs no watchdog for this process:
// WATCHDOG_USEC unset or not a number, or WATCHDOG_PID naming another process (a child that
// inherited the environment).
std::optional<std::chrono::microseconds> WatchdogPingIntervalFromEnvironment();

// Sends the ping; the default is NotifyWatchdog(), whose failure is ignored (a ping that does
// not arrive is what the watchdog is there to notice). Tests pass their own.
using WatchdogPing = std::function<void()>;
void SendWatchdogPing();

// Pings from a loop: Alive() every turn pings at most once per interval (the first call
// always), so a loop that stops turning stops the pings. With no interval it never pings.
class WatchdogPinger {
  public:
    using Clock = std::chrono::steady_clock;
    explicit WatchdogPinger(std::optional<std::chrono::microseconds> interval,
                            WatchdogPing ping = SendWatchdogPing);
    // Returns true when it pinged.
    bool Alive(Clock::time_point now = Clock::now());

  private:
    const std::optional<std::chrono::microseconds> interval_;
    const WatchdogPing ping_;
    std::optional<Clock::time_point> last_;
};

// Pings from a thread of its own: at once, then once per interval, each time only if
// healthy() says so (healthy is called on that thread). With no interval it starts no thread.
// The destructor stops the thread without waiting for the interval to end.
class WatchdogThread {
  public:
    WatchdogThread(std::optional<std::chrono::microseconds> interval, std::function<bool()> healthy,
                   WatchdogPing ping = SendWatchdogPing);
    ~WatchdogThread() = default;  // the jthread requests stop and joins
    WatchdogThread(const WatchdogThread&) = delete;
    WatchdogThread& operator=(const WatchdogThread&) = delete;

  private:
    const std::function<bool()> healthy_;
    const WatchdogPing ping_;
    std::mutex mutex_;
    std::condition_variable_any wake_;
    std::jthread thread_;  // last: joined before the members it uses are destroyed
};

}  // namespace hashd
