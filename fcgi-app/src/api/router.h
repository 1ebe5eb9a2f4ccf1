#pragma once
// The one place that knows the list of routes: path pattern, allowed methods, handler, and the
// route label that metrics and logs use (bounded cardinality: never the raw path).

#include <span>
#include <string_view>
#include <vector>

#include "api/hash_handlers.h"
#include "api/services.h"
#include "http/http.h"

namespace hashd {

// A handler answers with its response or an Error; RouteRequest turns the error into the
// one JSON error body (with the request's id), so handlers never build error responses.
using Handler = Result<Response> (*)(const Request&, const Services&);
// The bcrypt cost a request to the route will compute, 0 when it will not hash (see
// hash_handlers.h); nullptr for routes that never hash.
using HashCostOf = int (*)(const Request&, const Services&);
// A hashing route's handler up to its bcrypt computation (hash_handlers.h), so that the
// hashing threads can batch computations; nullptr for routes that never hash.
using HashPlannerOf = Result<HashWork> (*)(const Request&, const Services&);

struct Route {
    std::string_view label;  // e.g. "/v1/hash", "/messages/:digest"
    std::string_view path;   // exact path, or prefix when `prefix`
    bool prefix;
    std::string_view method;  // "GET" or "POST"
    Handler handler;
    // Routes that hash run on the hashing threads behind admission by expected wait
    // (admission.cc); the others (probes, messages) are answered by the accepting threads.
    HashCostOf hash_cost;
    HashPlannerOf plan = nullptr;
};

std::span<const Route> Routes();

// The routes as the metrics count them (label and method), in the table's order: what
// Metrics::Open lays its counters out for.
std::vector<RouteKey> RouteKeys();

struct Dispatch {
    std::string_view label;  // "unmatched" for 404s
    Response response;
};

// Finds the route for `request` and runs it; 400 "invalid_path" for a path that is not
// canonical (IsCanonicalPath), 404 for unknown paths, 405 with Allow for a known path with
// another method.
Dispatch RouteRequest(const Request& request, const Services& services);

// The 413 for a body over HASHD_MAX_BODY_BYTES on the route labelled `label`, saying what
// that route's body holds (a password is 72 bytes at most, a message 64 KiB).
Error BodyTooLarge(std::string_view label);

// The route `request` would take, without running it (the server admits by it first);
// nullptr for unknown and non-canonical paths.
const Route* FindRoute(const Request& request);

// Whether `path` (raw, still percent-encoded) means the same to nginx and to this router.
// nginx picks a location (and so a rate limit and the access log's redaction) from the path
// it has percent-decoded, dot-segment-resolved and slash-merged; the router matches the raw
// path. They agree exactly when the raw path has none of:
//   - an empty segment ("//"), or a "." or ".." segment, literal or percent-encoded;
//   - an encoded "/", "\" or NUL (%2F, %5C, %00), which decoding would turn into structure;
//   - any percent-encoding outside the data segment of a prefix route, /gethash/<password>[/]
//     and /messages/<digest> (so that /%67ethash/x/ cannot be one route to nginx and another
//     to the app).
// Without this, GET /gethash/..%2Fsecret/ was "/secret/" to nginx (general limit, logged in
// clear) and a password to the app. nginx refuses the same paths first (site.conf.j2,
// $hashd_path_is_canonical); this check keeps the app safe on its own.
bool IsCanonicalPath(std::string_view path);

}  // namespace hashd
