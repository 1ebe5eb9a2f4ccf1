#pragma once
// Liveness and readiness, as a load balancer and systemd's operators read them.

#include "http.h"
#include "services.h"

namespace hashd {

// 200 while the process can answer at all; no dependency is consulted.
Response HandleHealthz(const Request& request, const Services& services);
// 200 when the store answers and neither the process (SIGTERM) nor the VM (the file
// <runtime dir>/drain exists) is draining; else 503 naming the check ("draining",
// "store_unavailable").
Response HandleReadyz(const Request& request, const Services& services);
// The pool's metrics in Prometheus text format.
Response HandleMetrics(const Request& request, const Services& services);

}  // namespace hashd
