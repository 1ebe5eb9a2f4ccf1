#include "hashing/bcrypt_runner.h"

#include "hashing/bcrypt.h"

namespace hashd {

int BcryptLanes(const Config& config) {
    return config.bcrypt_engine == BcryptEngineKind::kInterleaved ? config.bcrypt_lanes : 1;
}

std::vector<Result<std::string>> RunBcrypt(std::span<const BcryptInput> inputs,
                                           const Config& config) {
    if (config.bcrypt_engine == BcryptEngineKind::kInterleaved)
        return BcryptCompute(inputs, config.bcrypt_lanes);
    std::vector<Result<std::string>> results;
    results.reserve(inputs.size());
    for (const BcryptInput& input : inputs)
        results.push_back(LibxcryptBcrypt(input.password, input.setting));
    return results;
}

BatchCompute ServiceBcrypt(const Config& config) {
    return [&config](std::span<const BcryptInput> inputs) { return RunBcrypt(inputs, config); };
}

}  // namespace hashd
