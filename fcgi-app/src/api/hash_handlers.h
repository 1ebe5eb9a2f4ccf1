#pragma once
// The password-hashing API: POST /v1/hash, POST /v1/verify and the original app's
// GET /gethash/<password>/, kept byte-compatible for its clients.
//
// Every handler returns its 2xx response or the Error the router turns into the JSON error
// body (errors.h). Common to all three: 400 when the password is missing, empty, over 72
// bytes, contains NUL or is not UTF-8 (bcrypt would silently hash something else); 500 only
// when libxcrypt fails, which no input causes. The password is held as a Secret and never
// logged.

#include <functional>
#include <string>

#include "api/services.h"
#include "core/result.h"
#include "core/secret.h"
#include "http/http.h"

namespace hashd {

// A hashing request split around its one bcrypt computation, so that a hashing thread can
// compute several requests' bcrypt together (hash_pool.h). Each handler below is its Plan*
// function, one computation through RunBcrypt (hashing/bcrypt_runner.h), then `answer`.
struct HashWork {
    Secret password;
    std::string setting;  // a fresh "$2b$NN$" + salt to hash with, or the hash to verify
    int cost = 0;
    // The response from the computed 60-character string, or the error to answer (a failed
    // computation is a 500). Verification compares in constant time.
    std::function<Result<Response>(const Result<std::string>& computed)> answer;
};

// Everything a handler checks before it hashes: the work, or the error to answer at once.
Result<HashWork> PlanHash(const Request& request, const Services& services);
Result<HashWork> PlanVerify(const Request& request, const Services& services);
Result<HashWork> PlanLegacyGetHash(const Request& request, const Services& services);

// POST /v1/hash, JSON {"password", "cost"?} or a form. 200 {"salt", "hash", "bcrypt",
// "cost"}; 400 invalid_json / invalid_encoding / missing_field / invalid_field (cost not an
// integer) / invalid_cost (outside HASHD_COST_MIN..MAX) / password_*; 415 for other bodies.
Result<Response> HandleHash(const Request& request, const Services& services);

// POST /v1/verify, {"password", "hash"} (bcrypt string or its hex). 200 {"match",
// "needs_rehash"}, compared in constant time; 400 invalid_hash, hash_cost_too_high (a hash
// may name cost 31: days of CPU), and the body errors of HandleHash; 415.
Result<Response> HandleVerify(const Request& request, const Services& services);

// GET /gethash/<password>[/]: the original body {"salt", "hash"} with Cache-Control:
// no-store and Deprecation; 410 when HASHD_LEGACY_GET=0; 404 for a nested path; 400 for a
// malformed %XX or a password outside policy.
Result<Response> HandleLegacyGetHash(const Request& request, const Services& services);

// The bcrypt cost the matching handler above will compute for `request`, or 0 when it will
// answer without hashing (invalid input, endpoint switched off). Admission (admission.cc)
// queues a request by this cost before the handler runs; it applies the handler's own checks,
// so the two cannot disagree.
int HashCost(const Request& request, const Services& services);
int VerifyCost(const Request& request, const Services& services);
int LegacyGetHashCost(const Request& request, const Services& services);

}  // namespace hashd
