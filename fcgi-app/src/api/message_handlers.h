#pragma once
// The content-addressed message API: POST /messages and GET /messages/<digest>, in the exact
// shape the older digest service's clients expect (201 on every POST, 404 "Message not found").
//
// Each handler returns its 2xx response or the Error the router turns into the JSON error
// body. Common to both: 503 store_unavailable with Retry-After while the store is down (the
// cause goes to the log only), recovered without a restart.

#include "api/services.h"
#include "core/result.h"
#include "http/http.h"

namespace hashd {

inline constexpr std::size_t kMaxMessageBytes = 64 * 1024;

// POST /messages, JSON {"message"}. 201 {"digest"} with Location, also when the message was
// already stored (idempotent), once the store's durability promise holds; 400 invalid_json /
// missing_field / invalid_field / message_not_utf8; 413 message_too_large (over 64 KiB);
// 415 for bodies that are not JSON; 507 store_full (LMDB map, Redis OOM).
Result<Response> HandlePostMessage(const Request& request, const Services& services);

// GET /messages/<digest>, digest case-insensitive. 200 {"message"}; 404 message_not_found
// for an unknown or malformed digest alike.
Result<Response> HandleGetMessage(const Request& request, const Services& services);

}  // namespace hashd
