#include "hashing/password_policy.h"

#include <string>

#include "core/text.h"
#include "hashing/bcrypt.h"

namespace hashd {

Status ValidatePassword(std::string_view password) {
    if (password.empty())
        return Error{ErrorKind::kInvalid, "password_empty", "The password must not be empty."};
    if (password.size() > kBcryptMaxPasswordBytes)
        return Error{ErrorKind::kInvalid, "password_too_long",
                     "The password is longer than 72 bytes; bcrypt would silently ignore the "
                     "rest. Use at most 72 bytes."};
    if (password.find('\0') != std::string_view::npos)
        return Error{ErrorKind::kInvalid, "password_contains_nul",
                     "The password must not contain a NUL byte."};
    if (!IsValidUtf8(password))
        return Error{ErrorKind::kInvalid, "password_not_utf8", "The password must be valid UTF-8."};
    return Ok{};
}

Result<int> ResolveCost(const Config& config, std::optional<int> requested) {
    if (!requested) return config.cost_default;
    if (*requested < config.cost_min || *requested > config.cost_max)
        return Error{ErrorKind::kInvalid, "invalid_cost",
                     "The cost must be between " + std::to_string(config.cost_min) + " and " +
                         std::to_string(config.cost_max) + "."};
    return *requested;
}

}  // namespace hashd
