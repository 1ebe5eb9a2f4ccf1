#pragma once
// The HTTP statuses and methods hashd knows, in one place: the FastCGI "Status:" line takes its
// reason phrase from here, and the metrics take their `status` and `method` label values from
// here (anything else is counted as "other"/"OTHER", so a client cannot mint new series).
// A status hashd or nginx can answer with belongs in kStatuses; forgetting one (507 once was)
// hides it in status="other", out of reach of the 5xx alert.

#include <cstddef>
#include <string_view>

namespace hashd {

struct HttpStatus {
    int code;
    std::string_view reason;
};

// Statuses hashd answers with, plus those nginx may pass through.
inline constexpr HttpStatus kStatuses[] = {
    {200, "OK"},
    {201, "Created"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {304, "Not Modified"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {413, "Payload Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {422, "Unprocessable Content"},
    {429, "Too Many Requests"},
    {499, "Client Closed Request"},  // nginx's code; hashd skips the hash (fcgi_server.cc)
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {507, "Insufficient Storage"},
};

// Methods as labels: the known ones, then "OTHER" for anything else.
inline constexpr std::string_view kMethods[] = {"GET",    "POST",  "HEAD",    "PUT",
                                                "DELETE", "PATCH", "OPTIONS", "OTHER"};

// The index of `code` in kStatuses, or std::size(kStatuses) when it is not there.
constexpr std::size_t StatusIndex(int code) {
    for (std::size_t i = 0; i < std::size(kStatuses); ++i)
        if (kStatuses[i].code == code) return i;
    return std::size(kStatuses);
}

// The index of `method` in kMethods; the index of "OTHER" when it is not a known one.
constexpr std::size_t MethodIndex(std::string_view method) {
    for (std::size_t i = 0; i + 1 < std::size(kMethods); ++i)
        if (kMethods[i] == method) return i;
    return std::size(kMethods) - 1;
}

// `method` itself when known, else "OTHER": safe as a label and a log field.
constexpr std::string_view MethodLabel(std::string_view method) {
    return kMethods[MethodIndex(method)];
}

}  // namespace hashd
