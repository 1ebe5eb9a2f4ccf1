#pragma once
// Liveness and readiness, as a load balancer and systemd's operators read them.

#include "api/services.h"
#include "core/result.h"
#include "http/http.h"

namespace hashd {

// 200 {"status": "ok"} while the process can answer at all; no dependency is consulted, so a
// busy store never gets a healthy VM replaced.
Result<Response> HandleHealthz(const Request& request, const Services& services);
// 200 {"status": "ready", "store"} when the store answers and neither the process (SIGTERM)
// nor the VM (the file <runtime dir>/drain exists) is draining; else 503 with Retry-After, error
// "draining" or the store's code, naming the failing check.
// The store's answer may be up to the readiness cache's max age old (readiness.h); draining
// is current.
Result<Response> HandleReadyz(const Request& request, const Services& services);
// The load balancer's check where the store is shared by every VM (GCE): 200 {"status":
// "serving"} unless the process or the VM is draining (503 "draining", as /readyz). The store
// is left out on purpose: a shared store's outage fails every VM's /readyz at once, and a load
// balancer that does not fail open (Google's is not documented to) would then stop hashing
// too. /messages answers 503 store_unavailable by itself while the store is down.
Result<Response> HandleReadyzServing(const Request& request, const Services& services);
// 200, the pool's metrics in Prometheus text format (0.0.4); never an error.
Result<Response> HandleMetrics(const Request& request, const Services& services);

}  // namespace hashd
