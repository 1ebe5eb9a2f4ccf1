#pragma once
// The one place that picks who computes bcrypt for the service (HASHD_BCRYPT_ENGINE): the
// interleaved engine, HASHD_BCRYPT_LANES at a time, or libxcrypt one at a time. Handlers and
// the hashing threads call this, never an engine directly.

#include <span>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/result.h"
#include "hashing/bcrypt_engine.h"

namespace hashd {

// The bcrypt string of every input (result i for input i), or its error: 400 invalid_password
// / invalid_hash for input no engine would hash exactly, 500 when libxcrypt failed. Blocks the
// calling thread for the computation; thread-safe.
std::vector<Result<std::string>> RunBcrypt(std::span<const BcryptInput> inputs,
                                           const Config& config);

// The lanes RunBcrypt uses per thread with `config`: HASHD_BCRYPT_LANES for the interleaved
// engine, 1 for libxcrypt.
int BcryptLanes(const Config& config);

// RunBcrypt bound to `config`, which must outlive the function.
BatchCompute ServiceBcrypt(const Config& config);

}  // namespace hashd
