#include "daemon/stop_signals.h"

#include <pthread.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace hashd {

bool StopSignalSet::Contains(int signal_number) const {
    return sigismember(&set_, signal_number) == 1;
}

Result<StopSignalSet> BlockStopSignals() {
    StopSignalSet signals;
    sigemptyset(&signals.set_);
    sigaddset(&signals.set_, SIGTERM);
    sigaddset(&signals.set_, SIGINT);
    if (int error = pthread_sigmask(SIG_BLOCK, &signals.set_, nullptr); error != 0)
        return Error{ErrorKind::kInternal, "signals",
                     std::string("cannot block SIGTERM and SIGINT: ") + std::strerror(error)};
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        return Error{ErrorKind::kInternal, "signals",
                     std::string("cannot ignore SIGPIPE: ") + std::strerror(errno)};
    return signals;
}

StopSignalWaiter::StopSignalWaiter(const StopSignalSet& signals, OnStop on_stop)
    : set_(signals.set()), on_stop_(std::move(on_stop)), thread_([this] { Wait(); }) {}

StopSignalWaiter::~StopSignalWaiter() {
    {
        std::lock_guard lock(mutex_);
        closing_ = true;
        // The thread is still in sigwait (it has not taken a signal): a signal sent to that
        // thread alone, and blocked there, ends the wait.
        if (!signalled_) pthread_kill(thread_.native_handle(), SIGTERM);
    }
    thread_.join();
}

void StopSignalWaiter::Wait() {
    int signal_number = 0;
    // sigwait fails only for an invalid set; retry on the EINTR some kernels report.
    while (sigwait(&set_, &signal_number) != 0) {
    }
    {
        std::lock_guard lock(mutex_);
        if (closing_) return;
        signalled_ = true;
    }
    stop_requested_.store(true);
    if (on_stop_) on_stop_(signal_number);
}

}  // namespace hashd
