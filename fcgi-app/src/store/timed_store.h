#pragma once
// Runs one store operation and records its outcome and duration in the store metrics
// (hashd_store_operations_total, hashd_store_duration_seconds): the one timing wrapper of
// every handler that touches the store.

#include <chrono>
#include <string_view>

#include "metrics/metrics.h"
#include "store/message_store.h"

namespace hashd {

enum class StoreAccess { kRead, kWrite };

// What a thread runs before a store call that may wait on I/O. The server installs its accept
// turn's hand-over (server/accept_turn.h) once, before its threads start; without one (tests,
// hashd-worker) nothing runs. The store layer only calls it, so it knows nothing of the server.
using BlockingHook = void (*)();
void SetBlockingHook(BlockingHook hook);
void RunBlockingHook();

// Calls `operation` (returning a Result) and records it under `op`; returns its result.
// A write waits on a flush, and any call to a network store on a round trip (or on a hung
// server, up to the store timeout): the calling thread first runs the blocking hook, so that
// the server's probes and hashing requests are still accepted meanwhile. A read of a local
// store (LMDB's memory map) does not wait on I/O and skips it.
template <typename Operation>
auto TimedStore(MessageStore& store, Metrics& metrics, std::string_view op, StoreAccess access,
                Operation&& operation) {
    if (access == StoreAccess::kWrite || !store.ReadsAreLocal()) RunBlockingHook();
    const auto start = std::chrono::steady_clock::now();
    auto result = operation();
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    metrics.RecordStore(store.Backend(), op, result.ok(), took.count());
    return result;
}

}  // namespace hashd
