#pragma once
// How both daemons are told to stop: SIGTERM (systemd's stop, spawn-fcgi's) and SIGINT
// (Ctrl-C under `make run`) are blocked in every thread and taken synchronously by one thread
// that sigwait()s for them, so the reaction to a signal is ordinary code (log, notify
// systemd, stop the server) instead of what little is async-signal-safe in a handler.
//
// That needs the signals blocked before any thread starts, since a thread inherits its
// creator's mask and a signal is delivered to any thread that has it unblocked. So there are
// two steps: BlockStopSignals() at the top of main, before the first thread, and a
// StopSignalWaiter once the program has what its stop reaction needs (the server to stop).
//
// SIGHUP is not taken: it keeps its default action (the process ends), as it always had.
// SIGPIPE is ignored: a client that went away is an error value from the write, not a reason
// to die.

#include <signal.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

#include "core/result.h"

namespace hashd {

// The signals that ask for a graceful stop, blocked in the calling thread.
class StopSignalSet {
  public:
    // True for SIGTERM and SIGINT.
    bool Contains(int signal_number) const;
    const sigset_t& set() const { return set_; }

  private:
    friend Result<StopSignalSet> BlockStopSignals();
    sigset_t set_{};
};

// Blocks SIGTERM and SIGINT in the calling thread (and so in every thread it starts later) and
// ignores SIGPIPE for the process. Call before any thread starts: a thread started earlier
// keeps the signals unblocked and may take one with its default action (death). The signals
// stay blocked for the rest of the process: one that arrives once no waiter waits is left
// pending, so a second SIGTERM during the exit cannot turn exit code 0 into death by signal.
// Fails (kInternal, "signals") when the mask or the disposition cannot be set.
Result<StopSignalSet> BlockStopSignals();

// A thread that waits for the first stop signal of `signals`. When one arrives it sets
// stop_requested() and then calls on_stop(signal number) once, on its own thread (on_stop may
// block, e.g. to log and to stop a server; it may be empty). Further stop signals stay
// pending and change nothing.
class StopSignalWaiter {
  public:
    using OnStop = std::function<void(int signal_number)>;
    // The calling thread must have `signals` blocked (BlockStopSignals()).
    StopSignalWaiter(const StopSignalSet& signals, OnStop on_stop);
    // Without a signal so far: wakes the thread and joins it without calling on_stop. After
    // one: waits for on_stop to return. So on_stop never runs once this is destroyed, and
    // what it uses needs only to outlive this object.
    ~StopSignalWaiter();
    StopSignalWaiter(const StopSignalWaiter&) = delete;
    StopSignalWaiter& operator=(const StopSignalWaiter&) = delete;

    // Set (and never cleared) before on_stop is called: a loop may poll it.
    const std::atomic<bool>& stop_requested() const { return stop_requested_; }

  private:
    void Wait();

    const sigset_t set_;
    const OnStop on_stop_;
    std::atomic<bool> stop_requested_{false};
    std::mutex mutex_;
    bool signalled_ = false;  // under mutex_: a signal arrived, on_stop runs or ran
    bool closing_ = false;    // under mutex_: the destructor woke the thread
    std::thread thread_;      // last: started once every member above exists
};

}  // namespace hashd
