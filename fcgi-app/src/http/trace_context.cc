#include "http/trace_context.h"

namespace hashd {
namespace {

bool IsLowerHex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool AllLowerHex(std::string_view s) {
    for (char c : s)
        if (!IsLowerHex(c)) return false;
    return true;
}

bool AllZeros(std::string_view s) {
    return s.find_first_not_of('0') == std::string_view::npos;
}

}  // namespace

std::string TraceIdFromTraceparent(std::string_view value) {
    // "00-" + 32 + "-" + 16 + "-" + 2 = 55 characters; later versions may append "-...".
    constexpr std::size_t kLength = 55;
    if (value.size() < kLength) return "";
    const std::string_view version = value.substr(0, 2), trace_id = value.substr(3, 32),
                           parent_id = value.substr(36, 16), flags = value.substr(53, 2);
    if (value[2] != '-' || value[35] != '-' || value[52] != '-') return "";
    if (!AllLowerHex(version) || version == "ff") return "";
    if (!AllLowerHex(trace_id) || AllZeros(trace_id)) return "";
    if (!AllLowerHex(parent_id) || AllZeros(parent_id)) return "";
    if (!AllLowerHex(flags)) return "";
    // Version 00 is exactly 55 characters; a later one may carry more after a '-'.
    if (value.size() > kLength && (version == "00" || value[kLength] != '-')) return "";
    return std::string(trace_id);
}

std::string TraceIdFromCloudTraceContext(std::string_view value) {
    if (value.size() < 32) return "";
    std::string trace_id(value.substr(0, 32));
    for (char& c : trace_id) {
        if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
        if (!IsLowerHex(c)) return "";
    }
    if (AllZeros(trace_id)) return "";
    // What follows the id, if anything, must start a span id or the options.
    if (value.size() > 32 && value[32] != '/' && value[32] != ';') return "";
    return trace_id;
}

std::string RequestTraceId(std::string_view traceparent, std::string_view cloud_trace_context) {
    std::string id = TraceIdFromTraceparent(traceparent);
    if (id.empty()) id = TraceIdFromCloudTraceContext(cloud_trace_context);
    return id;
}

}  // namespace hashd
