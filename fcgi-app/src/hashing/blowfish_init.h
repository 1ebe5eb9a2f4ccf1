#pragma once
// Blowfish's initial state (Schneier, 1993): the P-array and the four S-boxes are the
// fractional part of pi in hexadecimal, 1042 32-bit words. blowfish_init.cc is generated from
// pi by scripts/blowfish-pi-digits.py.

#include <cstdint>

namespace hashd {

struct BlowfishInit {
    std::uint32_t p[18];
    std::uint32_t s[4][256];
};

extern const BlowfishInit kBlowfishInit;

}  // namespace hashd
