#pragma once
// What a handler may use: the settings and the shared services of the process. Handlers get it
// by const reference; the services themselves are thread-safe.

#include <atomic>

#include "api/readiness.h"
#include "core/config.h"
#include "metrics/metrics.h"
#include "store/message_store.h"

namespace hashd {

struct Services {
    const Config& config;
    MessageStore& store;
    Metrics& metrics;
    const std::atomic<bool>& draining;  // set on SIGTERM: /readyz answers 503
    ReadinessCache& readiness;          // /readyz's cached store check
};

}  // namespace hashd
