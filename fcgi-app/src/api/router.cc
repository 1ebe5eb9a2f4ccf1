#include "api/router.h"

#include <string>

#include "api/hash_handlers.h"
#include "api/health_handlers.h"
#include "api/message_handlers.h"
#include "api/multivac_handlers.h"
#include "http/errors.h"

namespace hashd {
namespace {

constexpr Route kRoutes[] = {
    {"/v1/hash", "/v1/hash", false, "POST", HandleHash, HashCost, PlanHash},
    {"/v1/verify", "/v1/verify", false, "POST", HandleVerify, VerifyCost, PlanVerify},
    {"/gethash", "/gethash/", true, "GET", HandleLegacyGetHash, LegacyGetHashCost,
     PlanLegacyGetHash},
    {"/messages", "/messages", false, "POST", HandlePostMessage, nullptr, nullptr},
    {"/messages/:digest", "/messages/", true, "GET", HandleGetMessage, nullptr, nullptr},
    {"/healthz", "/healthz", false, "GET", HandleHealthz, nullptr, nullptr},
    {"/readyz", "/readyz", false, "GET", HandleReadyz, nullptr, nullptr},
    {"/readyz/serving", "/readyz/serving", false, "GET", HandleReadyzServing, nullptr, nullptr},
    {"/metrics", "/metrics", false, "GET", HandleMetrics, nullptr, nullptr},
    // MultiVAC (multivac_handlers.h): store reads and writes, answered like messages by the
    // accepting threads.
    {"/", "/", false, "GET", HandleMultivacWelcome, nullptr, nullptr},
    {"/multivac", "/multivac", false, "GET", HandleMultivacAnswer, nullptr, nullptr},
    {"/multivac/data", "/multivac/data", false, "POST", HandleMultivacData, nullptr, nullptr},
};

bool PathMatches(const Route& route, std::string_view path) {
    return route.prefix ? path.starts_with(route.path) : path == route.path;
}

// Where the data segment of `path` starts, when `path` is a prefix route's path followed by
// one segment (the /gethash/ password, the /messages/ digest; a trailing "/" allowed): the
// only place a path may hold percent-encoding, because the handler reads it as data.
// npos for any other path.
std::size_t DataSegmentOffset(std::string_view path) {
    for (const Route& route : kRoutes) {
        if (!route.prefix || !path.starts_with(route.path)) continue;
        std::string_view rest = path.substr(route.path.size());
        if (rest.ends_with('/')) rest.remove_suffix(1);
        if (rest.find('/') == std::string_view::npos) return route.path.size();
    }
    return std::string_view::npos;
}

std::string Lower(std::string_view text) {
    std::string lower(text);
    for (char& c : lower)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return lower;
}

bool IsDotSegment(std::string_view segment) {
    const std::string lower = Lower(segment);
    return lower == "." || lower == ".." || lower == "%2e" || lower == "%2e%2e" ||
           lower == ".%2e" || lower == "%2e.";
}

// Percent-encodings that decode into path structure or a NUL.
bool HasStructuralEncoding(std::string_view segment) {
    const std::string lower = Lower(segment);
    return lower.find("%2f") != std::string::npos || lower.find("%5c") != std::string::npos ||
           lower.find("%00") != std::string::npos;
}

}  // namespace

std::span<const Route> Routes() {
    return kRoutes;
}

std::vector<RouteKey> RouteKeys() {
    std::vector<RouteKey> keys;
    for (const Route& route : kRoutes) keys.push_back({route.label, route.method});
    return keys;
}

bool IsCanonicalPath(std::string_view path) {
    if (!path.starts_with('/')) return false;
    const std::size_t data_offset = DataSegmentOffset(path);
    std::size_t start = 1;  // of the current segment
    while (true) {
        const std::size_t slash = path.find('/', start);
        const bool last = slash == std::string_view::npos;
        const std::string_view segment = path.substr(start, last ? path.npos : slash - start);
        if (segment.empty() && !last) return false;  // "//"; an empty last one is a trailing "/"
        if (IsDotSegment(segment) || HasStructuralEncoding(segment)) return false;
        const bool is_data = data_offset != std::string_view::npos && start >= data_offset;
        if (segment.find('%') != std::string_view::npos && !is_data) return false;
        if (last) return true;
        start = slash + 1;
    }
}

const Route* FindRoute(const Request& request) {
    if (!IsCanonicalPath(request.path)) return nullptr;
    for (const Route& route : kRoutes)
        if (PathMatches(route, request.path) && route.method == request.method) return &route;
    return nullptr;
}

Error BodyTooLarge(std::string_view label) {
    if (label == "/messages")
        return {ErrorKind::kTooLarge, "body_too_large",
                "The request body is too large; a message holds at most 64 KiB of UTF-8."};
    if (label == "/v1/hash" || label == "/v1/verify")
        return {ErrorKind::kTooLarge, "body_too_large",
                "The request body is too large; a password is at most 72 bytes, so the body "
                "needs no more than a few hundred."};
    return {ErrorKind::kTooLarge, "body_too_large",
            "The request body is too large for this endpoint."};
}

Dispatch RouteRequest(const Request& request, const Services& services) {
    if (!IsCanonicalPath(request.path))
        return {"unmatched",
                ErrorResponse(
                    {ErrorKind::kInvalid, "invalid_path",
                     "The path is not canonical: no . or .. segments, no //, and no "
                     "percent-encoding outside the /gethash/ password or the /messages/ digest."},
                    request.request_id)};
    if (const Route* route = FindRoute(request)) {
        Result<Response> answer = route->handler(request, services);
        if (!answer.ok()) return {route->label, ErrorResponse(answer.error(), request.request_id)};
        return {route->label, std::move(answer).value()};
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
        return {label, ErrorResponse({ErrorKind::kNotFound, "not_found",
                                      "No such endpoint; see the API in the README."},
                                     request.request_id)};
    Response response =
        ErrorResponse({ErrorKind::kMethodNotAllowed, "method_not_allowed",
                       "Method " + request.method + " is not allowed here; use " + allow + "."},
                      request.request_id);
    response.AddHeader("Allow", allow);
    return {label, std::move(response)};
}

}  // namespace hashd
