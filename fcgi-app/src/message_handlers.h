#pragma once
// The content-addressed message API: POST /messages and GET /messages/<digest>, in the exact
// shape the older digest service's clients expect (201 on every POST, 404 "Message not found").

#include "http.h"
#include "services.h"

namespace hashd {

inline constexpr std::size_t kMaxMessageBytes = 64 * 1024;

Response HandlePostMessage(const Request& request, const Services& services);
Response HandleGetMessage(const Request& request, const Services& services);

}  // namespace hashd
