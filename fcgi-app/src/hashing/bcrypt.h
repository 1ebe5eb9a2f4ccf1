#pragma once
// bcrypt through libxcrypt. Thread-safe and free of global state: every call owns its
// crypt_data scratch area, and salts come from the kernel (crypt_gensalt_rn with no caller
// randomness reads getrandom()).
//
// libxcrypt's bcrypt silently ignores password bytes past 72 and stops at a NUL, so callers
// must validate passwords first (ValidatePassword in password_policy.h); these functions refuse
// such input as a second line of defence rather than hash something other than what was sent.

#include <string>
#include <string_view>

#include "core/result.h"

namespace hashd {

struct BcryptHash {
    std::string setting;  // "$2b$12$" + 22 salt characters (29 bytes)
    std::string hash;     // the full 60-byte bcrypt string
    int cost = 0;
};

// A parsed bcrypt string: "$2b$12$<53 chars>".
struct BcryptParts {
    std::string variant;  // "2a", "2b" or "2y"
    int cost = 0;
};

inline constexpr std::size_t kBcryptMaxPasswordBytes = 72;

// Hashes `password` with a fresh random salt at `cost` (4..31).
Result<BcryptHash> BcryptHashPassword(std::string_view password, int cost);

// Parses the structure of a bcrypt string; kInvalid "invalid_hash" when it is not one.
Result<BcryptParts> ParseBcrypt(std::string_view hash);

// Recomputes the hash of `password` with `hash`'s salt and compares in constant time.
Result<bool> BcryptVerify(std::string_view password, std::string_view hash);

// A fresh "$2b$NN$" + 22-character setting at `cost` (4..31), salt from the kernel
// (crypt_gensalt_rn); 500 when no salt could be made.
Result<std::string> BcryptNewSetting(int cost);

// libxcrypt's crypt_rn of `password` (0..72 bytes, no NUL) with `setting` (a setting or a full
// hash): the 60-character string, or an error. The reference the interleaved engine
// (hashing/bcrypt_engine.h) is held to by the self-test and the tests.
Result<std::string> LibxcryptBcrypt(std::string_view password, std::string_view setting);

}  // namespace hashd
