// UTF-8 validation, differentially: IsValidUtf8 (which decodes code points) against a checker
// written straight from the Unicode Standard's table of well-formed byte sequences (Table
// 3-7), which only compares byte ranges. Any disagreement is a bug in one of them.

#include <cstdint>
#include <string_view>

#include "core/text.h"
#include "fuzz_support.h"

namespace {

bool InRange(std::uint8_t b, std::uint8_t lo, std::uint8_t hi) {
    return b >= lo && b <= hi;
}

bool WellFormedPerTable37(const std::uint8_t* s, std::size_t n) {
    std::size_t i = 0;
    while (i < n) {
        const std::uint8_t b = s[i];
        auto at = [&](std::size_t k) -> int { return i + k < n ? s[i + k] : -1; };
        auto cont = [&](std::size_t k, std::uint8_t lo, std::uint8_t hi) {
            const int c = at(k);
            return c >= 0 && InRange(static_cast<std::uint8_t>(c), lo, hi);
        };
        if (b <= 0x7F) {
            i += 1;
        } else if (InRange(b, 0xC2, 0xDF) && cont(1, 0x80, 0xBF)) {
            i += 2;
        } else if (b == 0xE0 && cont(1, 0xA0, 0xBF) && cont(2, 0x80, 0xBF)) {
            i += 3;
        } else if ((InRange(b, 0xE1, 0xEC) || InRange(b, 0xEE, 0xEF)) && cont(1, 0x80, 0xBF) &&
                   cont(2, 0x80, 0xBF)) {
            i += 3;
        } else if (b == 0xED && cont(1, 0x80, 0x9F) && cont(2, 0x80, 0xBF)) {
            i += 3;
        } else if (b == 0xF0 && cont(1, 0x90, 0xBF) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF)) {
            i += 4;
        } else if (InRange(b, 0xF1, 0xF3) && cont(1, 0x80, 0xBF) && cont(2, 0x80, 0xBF) &&
                   cont(3, 0x80, 0xBF)) {
            i += 4;
        } else if (b == 0xF4 && cont(1, 0x80, 0x8F) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF)) {
            i += 4;
        } else {
            return false;
        }
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const bool ours =
        hashd::IsValidUtf8(std::string_view(reinterpret_cast<const char*>(data), size));
    FUZZ_CHECK(ours == WellFormedPerTable37(data, size),
               "IsValidUtf8 disagrees with the Unicode table");
    return 0;
}
