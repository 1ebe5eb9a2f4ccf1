#pragma once
// Runs one store operation and records its outcome and duration in the store metrics
// (hashd_store_operations_total, hashd_store_duration_seconds): the one timing wrapper of
// every handler that touches the store.

#include <chrono>
#include <string_view>

#include "services.h"

namespace hashd {

// Calls `operation` (returning a Result) and records it under `op`; returns its result.
template <typename Operation>
auto TimedStore(const Services& services, std::string_view op, Operation&& operation) {
    const auto start = std::chrono::steady_clock::now();
    auto result = operation();
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    services.metrics.RecordStore(services.store.Backend(), op, result.ok(), took.count());
    return result;
}

}  // namespace hashd
