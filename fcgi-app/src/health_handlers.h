#pragma once
// Liveness and readiness, as a load balancer and systemd's operators read them.

#include "http.h"
#include "services.h"

namespace hashd {

// 200 while the process can answer at all; no dependency is consulted.
Response HandleHealthz(const Request& request, const Services& services);
// 200 when the store answers and the process is not draining; else 503 naming the check.
// The store's answer may be up to the readiness cache's max age old (readiness.h); draining
// is current.
Response HandleReadyz(const Request& request, const Services& services);
// The pool's metrics in Prometheus text format.
Response HandleMetrics(const Request& request, const Services& services);

}  // namespace hashd
