#pragma once
// Which accepting thread calls accept(): one at a time (leader/follower), and another as soon
// as that one is about to wait on I/O.
//
// Why. With every accepting thread blocked in accept(), each new connection wakes a sleeping
// thread while the one that just answered is about to ask for more: a wake-up (a
// cross-CPU interrupt on a VM) per request. One thread in accept() at a time picks the next
// connection straight from the backlog whenever requests arrive faster than it answers them,
// and the others sleep untouched: GET /messages on LMDB went from 24.5k to ~29k requests a
// second on two cores (bench/messages/run). Several accepting threads still exist for one
// reason: a thread waiting on the store (an fdatasync, a network round trip, a hung server
// until the store timeout) must not leave probes and hashing requests unaccepted, so such a
// thread passes the turn on first (BeforeBlocking, which the server installs as the store's
// blocking hook: store/timed_store.h).

#include <atomic>
#include <chrono>
#include <mutex>

namespace hashd {

class AcceptTurn {
  public:
    AcceptTurn() = default;
    AcceptTurn(const AcceptTurn&) = delete;
    AcceptTurn& operator=(const AcceptTurn&) = delete;

    // Blocks until the calling thread holds the turn; returns at once when it already does.
    // A thread must Pass() a turn it holds before it exits.
    void Take();

    // Gives the turn up (a waiting thread gets it); nothing when the caller does not hold it.
    void Pass();

    // The holder says it started a request at `since` (steady_clock), or that it is back in
    // accept() (a default time point); nothing when the caller does not hold the turn.
    // Pass() clears it.
    void MarkBusy(std::chrono::steady_clock::time_point since);

    // When the current holder started the request it is on; a default time point while it
    // waits in accept() or nobody holds the turn. For the watchdog: a holder stuck on one
    // request leaves every accepting thread idle but useless.
    std::chrono::steady_clock::time_point BusySince() const;

  private:
    // Held by the thread whose turn it is, across accept() and the work after it; which
    // thread that is, a mutex cannot say, so each thread remembers it (accept_turn.cc).
    std::mutex mutex_;
    std::atomic<std::chrono::steady_clock::rep> busy_since_{0};
};

// Called by a thread about to wait on I/O: when it holds an accept turn, the turn goes to
// another accepting thread. Cheap and harmless anywhere else (hashing threads, tests).
void BeforeBlocking();

}  // namespace hashd
