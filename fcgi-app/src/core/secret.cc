#include "core/secret.h"

#include <openssl/crypto.h>

namespace hashd {

void Wipe(void* data, std::size_t size) {
    if (data != nullptr && size > 0) OPENSSL_cleanse(data, size);
}

void Wipe(std::string& text) {
    // capacity() bytes are ours, including what a shorter value left behind.
    Wipe(text.data(), text.capacity());
    text.clear();
}

}  // namespace hashd
