#include "daemon/watchdog.h"

#include <systemd/sd-daemon.h>

#include "daemon/notify.h"

namespace hashd {

std::optional<std::chrono::microseconds> WatchdogPingInterval(uint64_t watchdog_usec) {
    if (watchdog_usec == 0) return std::nullopt;
    return std::chrono::microseconds(watchdog_usec / 2);
}

std::optional<std::chrono::microseconds> WatchdogPingIntervalFromEnvironment() {
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0) return std::nullopt;
    return WatchdogPingInterval(usec);
}

void SendWatchdogPing() {
    static_cast<void>(NotifyWatchdog());
}

WatchdogPinger::WatchdogPinger(std::optional<std::chrono::microseconds> interval, WatchdogPing ping)
    : interval_(interval), ping_(std::move(ping)) {}

bool WatchdogPinger::Alive(Clock::time_point now) {
    if (!interval_) return false;
    if (last_ && now - *last_ < *interval_) return false;
    ping_();
    last_ = now;
    return true;
}

WatchdogThread::WatchdogThread(std::optional<std::chrono::microseconds> interval,
                               std::function<bool()> healthy, WatchdogPing ping)
    : healthy_(std::move(healthy)), ping_(std::move(ping)) {
    if (!interval) return;
    thread_ = std::jthread([this, every = *interval](std::stop_token stop) {
        std::unique_lock lock(mutex_);
        while (!stop.stop_requested()) {
            if (healthy_()) ping_();
            wake_.wait_for(lock, stop, every, [] { return false; });
        }
    });
}

}  // namespace hashd
