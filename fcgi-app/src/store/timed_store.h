#pragma once
// Runs one store operation and records its outcome and duration in the store metrics
// (hashd_store_operations_total, hashd_store_duration_seconds): the one timing wrapper of
// every handler that touches the store.

#include <chrono>
#include <string_view>

#include "api/services.h"
#include "server/accept_turn.h"

namespace hashd {

enum class StoreAccess { kRead, kWrite };

// Calls `operation` (returning a Result) and records it under `op`; returns its result.
// A write waits on a flush, and any call to a network store on a round trip (or on a hung
// server, up to the store timeout): the calling thread first passes its accept turn on
// (accept_turn.h), so that probes and hashing requests are still accepted meanwhile. A read
// of a local store (LMDB's memory map) does not wait on I/O and keeps the turn.
template <typename Operation>
auto TimedStore(const Services& services, std::string_view op, StoreAccess access,
                Operation&& operation) {
    if (access == StoreAccess::kWrite || !services.store.ReadsAreLocal()) BeforeBlocking();
    const auto start = std::chrono::steady_clock::now();
    auto result = operation();
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    services.metrics.RecordStore(services.store.Backend(), op, result.ok(), took.count());
    return result;
}

}  // namespace hashd
