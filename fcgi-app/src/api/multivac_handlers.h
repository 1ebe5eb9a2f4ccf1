#pragma once
// The MultiVAC API, kept byte for byte for the older service's clients:
//   GET /                 200 "Welcome to MultiVAC!" (text/html; charset=utf-8)
//   GET /multivac         200 "INSUFFICIENT DATA FOR MEANINGFUL ANSWER." until a datum has been
//                         processed, then the first processed datum, forever (text/html)
//   POST /multivac/data   form (or JSON) field "data": 200 {"response": "MultiVAC updated!"}
//                         once the datum is durably queued (data_queue.h); hashd-worker
//                         processes it later
// Errors use the JSON error shape: 400 without "data", 413 above 64 KiB, 415, and 503
// store_unavailable when the store cannot be reached (both GET /multivac and the POST).

#include "api/services.h"
#include "core/result.h"
#include "http/http.h"

namespace hashd {

Result<Response> HandleMultivacWelcome(const Request& request, const Services& services);
Result<Response> HandleMultivacAnswer(const Request& request, const Services& services);
Result<Response> HandleMultivacData(const Request& request, const Services& services);

}  // namespace hashd
