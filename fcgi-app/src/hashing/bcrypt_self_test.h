#pragma once
// The start-up self-test of the interleaved engine: a fixed set of inputs (each variant, 8-bit
// bytes, $2a$'s 0xff corner, 1- and 72-byte passwords, fixed and fresh salts) computed by the
// engine, all lanes at once and one at a time, must equal libxcrypt's answers bit for bit.
// main() refuses to start when it fails: a miscompiled or mis-optimized engine would otherwise
// write hashes no other bcrypt verifies, which is hard to undo once stored.

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "hashing/bcrypt_engine.h"

namespace hashd {

// What computes the engine's side of the test; BcryptCompute unless a test injects a fault.
using BcryptBatchFunction =
    std::function<std::vector<Result<std::string>>(std::span<const BcryptInput>, int lanes)>;

// Ok when every answer of `engine` at `lanes` (and at 1 lane) equals libxcrypt's; otherwise a
// 500 "bcrypt_self_test_failed" whose message names the first differing case (variant, cost,
// password length: never the password). Takes ~50 ms of CPU (cost 4 and 5).
Status BcryptSelfTest(int lanes, const BcryptBatchFunction& engine = BcryptCompute);

}  // namespace hashd
