// bcrypt strings: the parser accepts exactly "$2{a,b,y}$NN$" + 53 base-64 characters with a
// cost of 4..31, and a string it accepts can be verified (at the cheap costs, to keep the
// fuzzer fast) without an error.

#include <cstdint>
#include <string_view>

#include "fuzz_support.h"
#include "hashing/bcrypt.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view hash(reinterpret_cast<const char*>(data), size);
    auto parts = hashd::ParseBcrypt(hash);
    if (!parts.ok()) {
        FUZZ_CHECK(parts.error().kind == hashd::ErrorKind::kInvalid,
                   "a malformed hash is not a 400");
        return 0;
    }
    FUZZ_CHECK(hash.size() == 60, "accepted a hash that is not 60 bytes");
    FUZZ_CHECK(parts.value().cost >= 4 && parts.value().cost <= 31, "cost out of range");
    FUZZ_CHECK(parts.value().variant == "2a" || parts.value().variant == "2b" ||
                   parts.value().variant == "2y",
               "unknown variant");
    if (parts.value().cost <= 5) {
        auto match = hashd::BcryptVerify("fuzz", hash);
        FUZZ_CHECK(match.ok(), "a parsed hash could not be verified");
    }
    return 0;
}
