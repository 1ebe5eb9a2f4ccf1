#include "router.h"

#include <string>

#include "errors.h"
#include "hash_handlers.h"
#include "health_handlers.h"
#include "message_handlers.h"
#include "multivac_handlers.h"

namespace hashd {
namespace {

constexpr Route kRoutes[] = {
    {"/v1/hash", "/v1/hash", false, "POST", HandleHash, true},
    {"/v1/verify", "/v1/verify", false, "POST", HandleVerify, true},
    {"/gethash", "/gethash/", true, "GET", HandleLegacyGetHash, true},
    {"/messages", "/messages", false, "POST", HandlePostMessage, true},
    {"/messages/:digest", "/messages/", true, "GET", HandleGetMessage, true},
    {"/healthz", "/healthz", false, "GET", HandleHealthz, false},
    {"/readyz", "/readyz", false, "GET", HandleReadyz, false},
    {"/metrics", "/metrics", false, "GET", HandleMetrics, false},
    // MultiVAC (multivac_handlers.h): store reads and writes, shed like messages.
    {"/", "/", false, "GET", HandleMultivacWelcome, true},
    {"/multivac", "/multivac", false, "GET", HandleMultivacAnswer, true},
    {"/multivac/data", "/multivac/data", false, "POST", HandleMultivacData, true},
};

bool PathMatches(const Route& route, std::string_view path) {
    return route.prefix ? path.starts_with(route.path) : path == route.path;
}

}  // namespace

std::span<const Route> Routes() {
    return kRoutes;
}

const Route* FindRoute(const Request& request) {
    for (const Route& route : kRoutes)
        if (PathMatches(route, request.path) && route.method == request.method) return &route;
    return nullptr;
}

ApiError BodyTooLarge(std::string_view label) {
    if (label == "/messages")
        return {413, "body_too_large",
                "The request body is too large; a message holds at most 64 KiB of UTF-8."};
    if (label == "/v1/hash" || label == "/v1/verify")
        return {413, "body_too_large",
                "The request body is too large; a password is at most 72 bytes, so the body "
                "needs no more than a few hundred."};
    return {413, "body_too_large", "The request body is too large for this endpoint."};
}

Dispatch RouteRequest(const Request& request, const Services& services) {
    if (const Route* route = FindRoute(request)) {
        Result<Response> answer = route->handler(request, services);
        if (!answer.ok())
            return {route->label, route->sheddable,
                    ErrorResponse(answer.error(), request.request_id)};
        return {route->label, route->sheddable, std::move(answer).value()};
    }

    std::string allow;
    std::string_view label = "unmatched";
    for (const Route& route : kRoutes) {
        if (!PathMatches(route, request.path)) continue;
        if (allow.find(route.method) == std::string::npos)
            allow += (allow.empty() ? "" : ", ") + std::string(route.method);
        label = route.label;
    }
    if (allow.empty())
        return {label, false,
                ErrorResponse({404, "not_found", "No such endpoint; see the API in the README."},
                              request.request_id)};
    Response response =
        ErrorResponse({405, "method_not_allowed",
                       "Method " + request.method + " is not allowed here; use " + allow + "."},
                      request.request_id);
    response.AddHeader("Allow", allow);
    return {label, false, std::move(response)};
}

}  // namespace hashd
