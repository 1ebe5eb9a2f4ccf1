#pragma once
// The password-hashing API: POST /v1/hash, POST /v1/verify and the original app's
// GET /gethash/<password>/, kept byte-compatible for its clients.

#include "http.h"
#include "services.h"

namespace hashd {

Response HandleHash(const Request& request, const Services& services);
Response HandleVerify(const Request& request, const Services& services);
Response HandleLegacyGetHash(const Request& request, const Services& services);

// The bcrypt cost the matching handler above will compute for `request`, or 0 when it will
// answer without hashing (invalid input, endpoint switched off). Admission (admission.cc)
// queues a request by this cost before the handler runs; it applies the handler's own checks,
// so the two cannot disagree.
int HashCost(const Request& request, const Services& services);
int VerifyCost(const Request& request, const Services& services);
int LegacyGetHashCost(const Request& request, const Services& services);

}  // namespace hashd
