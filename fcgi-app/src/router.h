#pragma once
// The one place that knows the list of routes: path pattern, allowed methods, handler, and the
// route label that metrics and logs use (bounded cardinality: never the raw path).

#include <span>
#include <string_view>

#include "http.h"
#include "services.h"

namespace hashd {

// A handler answers with its response or an ApiError; RouteRequest turns the error into the
// one JSON error body (with the request's id), so handlers never build error responses.
using Handler = Result<Response> (*)(const Request&, const Services&);

struct Route {
    std::string_view label;  // e.g. "/v1/hash", "/messages/:digest"
    std::string_view path;   // exact path, or prefix when `prefix`
    bool prefix;
    std::string_view method;  // "GET" or "POST"
    Handler handler;
    bool sheddable;  // subject to the queue-wait deadline
};

std::span<const Route> Routes();

struct Dispatch {
    std::string_view label;  // "unmatched" for 404s
    bool sheddable = false;
    Response response;
};

// Finds the route for `request` and runs it; 404 for unknown paths, 405 with Allow for a known
// path with another method.
Dispatch RouteRequest(const Request& request, const Services& services);

// The 413 for a body over HASHD_MAX_BODY_BYTES on the route labelled `label`, saying what
// that route's body holds (a password is 72 bytes at most, a message 64 KiB).
ApiError BodyTooLarge(std::string_view label);

// The route `request` would take, without running it (the server sheds by it before handling).
const Route* FindRoute(const Request& request);

}  // namespace hashd
