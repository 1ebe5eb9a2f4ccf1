// Form fields, percent-decoding and hex: no crash on any input, and the decoders agree with
// their encoders (decode(encode(x)) == x).

#include <cstdint>
#include <string>
#include <string_view>

#include "core/text.h"
#include "fuzz_support.h"

namespace {

std::string PercentEncode(std::string_view bytes) {
    static constexpr char kDigits[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char b : bytes) {
        out += '%';
        out += kDigits[b >> 4];
        out += kDigits[b & 0x0F];
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    for (std::string_view key : {"password", "cost", "data", ""}) {
        auto field = hashd::FormField(input, key);
        if (field.ok() && field.value()) {
            FUZZ_CHECK(field.value()->size() <= input.size(), "a field longer than the body");
        } else if (!field.ok()) {
            FUZZ_CHECK(field.error().kind == hashd::ErrorKind::kInvalid,
                       "a malformed field is not a 400");
        }
    }

    auto decoded = hashd::PercentDecode(input);
    if (decoded) FUZZ_CHECK(decoded->size() <= input.size(), "decoding grew the text");
    FUZZ_CHECK(hashd::PercentDecode(PercentEncode(input)) == std::string(input),
               "percent round trip");
    // A value encoded as a form field is found and decoded exactly.
    auto round = hashd::FormField("a=1&password=" + PercentEncode(input) + "&b=2", "password");
    FUZZ_CHECK(round.ok() && round.value() == std::string(input), "form round trip");

    FUZZ_CHECK(hashd::HexDecode(hashd::HexEncode(input)) == std::string(input), "hex round trip");
    if (auto hex = hashd::HexDecode(input))
        FUZZ_CHECK(hex->size() * 2 == input.size(), "hex decoding has the wrong length");
    hashd::MediaType(input);
    return 0;
}
