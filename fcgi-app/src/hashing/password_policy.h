#pragma once
// What the service accepts as a password and a cost. Separate from bcrypt.h because these are
// policy (configurable, client-facing messages), while bcrypt.h is the mechanism.

#include <optional>
#include <string_view>

#include "core/config.h"
#include "core/result.h"

namespace hashd {

// 1..72 bytes of valid UTF-8 without NUL; otherwise kInvalid naming the rule broken.
Status ValidatePassword(std::string_view password);

// The cost to use: `requested` when within [cost_min, cost_max], the default when absent.
Result<int> ResolveCost(const Config& config, std::optional<int> requested);

}  // namespace hashd
