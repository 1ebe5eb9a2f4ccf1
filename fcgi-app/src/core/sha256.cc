#include "core/sha256.h"

#include <openssl/evp.h>

#include <array>
#include <memory>
#include <stdexcept>

#include "core/text.h"

namespace hashd {

std::string Sha256Hex(std::string_view bytes) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    // EVP_Digest allocates its context internally; failure here means OpenSSL itself is broken.
    if (EVP_Digest(bytes.data(), bytes.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("EVP_Digest(SHA-256) failed");
    return HexEncode(std::string_view(reinterpret_cast<const char*>(digest.data()), length));
}

}  // namespace hashd
