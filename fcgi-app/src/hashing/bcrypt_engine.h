#pragma once
// bcrypt computed here, several hashes at once per thread, bit-identical to libxcrypt.
//
// Why: bcrypt's cost is Blowfish's key schedule run 2^(cost+1) times, and each Blowfish round
// is a chain of four dependent table lookups: one hash keeps a modern core's load units mostly
// waiting. K independent hashes of the same cost, advanced round by round side by side in one
// thread, fill those slots (John the Ripper does the same to crack bcrypt). The design, the
// measurements behind the default lane count and what was compared with what are in
// docs/bcrypt-engine.md.
//
// Promises:
// - Output: the 60-character bcrypt string libxcrypt's crypt_rn returns for the same password
//   and setting, for the "$2a$", "$2b$" and "$2y$" variants, costs 4..31, passwords of 0..72
//   bytes of any byte values except NUL (including libxcrypt's $2a$ "safety" deviation for
//   some passwords with 0xff bytes). The start-up self-test (bcrypt_self_test.h) and the unit
//   and fuzz tests hold it to that.
// - Inputs are validated: a setting that is not "$2a|b|y$NN$" + 22 salt characters (NN 04..31),
//   or a password over 72 bytes or containing a NUL, is an error value for that input, never a
//   hash of something other than what was given. Characters of `setting` after its 29th are
//   ignored, so a full 60-character hash serves as the setting to verify against.
// - Side channels: like every bcrypt implementation, the S-box lookups are indexed by
//   secret-derived data (the password-keyed state), so the memory addresses touched depend on
//   the password: a co-resident attacker who can time cache lines could learn about it. The
//   control flow depends only on the password's length (which the caller knows anyway) and
//   on the cost. Nothing is compared here; verification's compare is constant-time in its
//   caller.
// - The state of every lane (key schedule, expanded key, salt, intermediate blocks) lives in
//   one heap buffer per call, wiped with OPENSSL_cleanse before it is freed.
// - Thread-safe: no global mutable state; each call owns its buffers.

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace hashd {

// The most hashes one thread interleaves (lanes): four lanes' state is ~17 KiB, which still
// fits a 32 KiB L1 data cache; more would spill and gain nothing on the machines measured.
inline constexpr int kBcryptMaxLanes = 4;

struct BcryptInput {
    std::string_view password;  // 0..72 bytes, no NUL
    std::string_view setting;   // "$2b$12$" + 22 salt characters (29+ characters)
};

// The cost named by a setting or hash, after checking its shape as BcryptCompute will; an
// error (400 "invalid_hash") when it is not one.
Result<int> BcryptSettingCost(std::string_view setting);

// Computes the bcrypt string of every input, in the calling thread, up to `lanes` (clamped to
// 1..kBcryptMaxLanes) at a time interleaved; inputs of different costs are computed in
// separate groups. The result i belongs to input i: the 60-character string, or an Error
// (400 for an invalid input, see above). Inputs of the same cost take about as long together
// as the slowest group of `lanes` of them.
std::vector<Result<std::string>> BcryptCompute(std::span<const BcryptInput> inputs, int lanes);

// Computes a batch's inputs together, result i for input i (as BcryptCompute): the shape of
// the service's bcrypt (RunBcrypt with the process's settings), which the hashing threads run
// and the start-up timings time.
using BatchCompute = std::function<std::vector<Result<std::string>>(std::span<const BcryptInput>)>;

}  // namespace hashd
