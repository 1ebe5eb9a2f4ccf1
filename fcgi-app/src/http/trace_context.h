#pragma once
// The trace id a request arrives with, for the logs: W3C Trace Context (`traceparent`, what
// OpenTelemetry and most load balancers send) or Google's `X-Cloud-Trace-Context` (what Google's
// HTTPS load balancer adds). hashd does not trace itself; it logs the caller's trace id beside
// the request id, so that one request can be followed from the load balancer into the app.
//
// Only the trace id is kept (32 lower-case hex digits), and only from a header that is well
// formed: the value reaches log lines, so a client cannot put arbitrary text there.

#include <string>
#include <string_view>

namespace hashd {

// The trace id of `traceparent` (version-traceid-parentid-flags, W3C Trace Context level 1:
// 2 + 32 + 16 + 2 lower-case hex digits; version ff, an all-zero trace or parent id, or upper
// case are invalid; a later version may append fields after a '-'), or "" when it is not valid.
std::string TraceIdFromTraceparent(std::string_view traceparent);

// The trace id of `X-Cloud-Trace-Context: TRACE_ID[/SPAN_ID][;o=OPTIONS]` (32 hex digits, any
// case, returned in lower case; not all zeros), or "" when it is not valid.
std::string TraceIdFromCloudTraceContext(std::string_view header);

// The request's trace id: traceparent's when valid (the W3C standard wins where a load
// balancer sends both), else X-Cloud-Trace-Context's, else "".
std::string RequestTraceId(std::string_view traceparent, std::string_view cloud_trace_context);

}  // namespace hashd
