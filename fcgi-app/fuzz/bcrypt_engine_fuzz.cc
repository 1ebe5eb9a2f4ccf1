// The interleaved engine against libxcrypt, differentially: random passwords (any bytes; NUL
// and over 72 bytes must be refused by both sides alike), random salts (any characters: an
// invalid one must be refused), the three variants and low costs (4..6, to keep it fast), in
// batches of 1..4 inputs at 1..4 lanes. Any difference from libxcrypt is a finding.
//
// Input layout: byte 0 picks lanes and batch size, then per input: variant/cost byte, 22 salt
// bytes, a length byte, and that many password bytes.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "hashing/bcrypt.h"
#include "hashing/bcrypt_engine.h"

namespace {

constexpr char kAlphabet[] = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

struct Reader {
    const std::uint8_t* data;
    std::size_t size;
    std::size_t at = 0;
    bool Byte(std::uint8_t& out) {
        if (at >= size) return false;
        out = data[at++];
        return true;
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Reader in{data, size};
    std::uint8_t shape = 0;
    if (!in.Byte(shape)) return 0;
    const int lanes = 1 + (shape & 3);
    const int count = 1 + ((shape >> 2) & 3);
    std::vector<std::string> passwords, settings;
    for (int n = 0; n < count; ++n) {
        std::uint8_t kind = 0, length = 0;
        if (!in.Byte(kind)) break;
        std::string setting = "$2";
        setting += "aby"[kind % 3];
        setting += "$0";
        setting += static_cast<char>('4' + (kind / 3) % 3);
        setting += '$';
        for (int i = 0; i < 22; ++i) {
            std::uint8_t b = 0;
            if (!in.Byte(b)) b = 0;
            // Mostly salt characters; a byte with the top bit set stays raw (invalid).
            setting += (b & 0x80) && (kind & 0x40) ? static_cast<char>(b) : kAlphabet[b % 64];
        }
        if (!in.Byte(length)) length = 0;
        std::string password;
        for (int i = 0; i < (length % 80); ++i) {
            std::uint8_t b = 0;
            if (!in.Byte(b)) break;
            password += static_cast<char>(b);
        }
        passwords.push_back(password);
        settings.push_back(setting);
    }
    std::vector<hashd::BcryptInput> inputs;
    for (std::size_t i = 0; i < passwords.size(); ++i)
        inputs.push_back({passwords[i], settings[i]});
    const auto got = hashd::BcryptCompute(inputs, lanes);
    FUZZ_CHECK(got.size() == inputs.size(), "one result per input");
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const auto want = hashd::LibxcryptBcrypt(passwords[i], settings[i]);
        if (want.ok()) {
            FUZZ_CHECK(got[i].ok(), "libxcrypt hashed an input the engine refused");
            FUZZ_CHECK(got[i].value() == want.value(), "the engine differs from libxcrypt");
        } else {
            FUZZ_CHECK(!got[i].ok(), "the engine hashed an input libxcrypt refused");
            FUZZ_CHECK(got[i].error().kind == hashd::ErrorKind::kInvalid,
                       "a refused input is not invalid");
        }
    }
    return 0;
}
