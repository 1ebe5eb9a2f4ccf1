#pragma once
// SHA-256 through OpenSSL's EVP interface: the content address of a message.

#include <string>
#include <string_view>

namespace hashd {

// Lower-case hex of SHA-256(bytes), 64 characters.
std::string Sha256Hex(std::string_view bytes);

}  // namespace hashd
