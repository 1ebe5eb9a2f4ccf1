#pragma once
// Who may call which route group (HASHD_AUTH): the policy half of access control, parsed by
// the config loader so that a bad value refuses to start. api/access.h checks requests
// against it and the clients file.

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>

#include "core/result.h"

namespace hashd {

// The route groups of HASHD_AUTH and of the clients file. Probes, /metrics and `/` are in
// none: they are never gated.
enum class RouteGroup { kHash, kVerify, kLegacy, kMessages, kMultivac };
inline constexpr std::size_t kRouteGroups = 5;

// What a gated request must carry: nothing, a bearer token, a verified client certificate,
// or either.
enum class AccessMode { kOpen, kToken, kMtls, kAny };

// "hash", "verify", "legacy", "messages", "multivac"; nullopt for any other name.
std::optional<RouteGroup> RouteGroupNamed(std::string_view name);
const char* RouteGroupName(RouteGroup group);

struct AccessPolicy {
    std::array<AccessMode, kRouteGroups> modes{};  // all kOpen

    AccessMode For(RouteGroup group) const { return modes[static_cast<std::size_t>(group)]; }
    // Whether any group needs a credential (only then is the clients file read).
    bool AnyGated() const;
    bool operator==(const AccessPolicy&) const = default;
};

// Parses `group=mode,...` (modes open|token|mtls|any; groups as above, or `all` for every
// group, a later entry overriding an earlier one). Empty text: everything open. Groups not
// named stay open. An unknown group or mode, or an entry without `=`, is an error naming it.
Result<AccessPolicy> ParseAccessPolicy(std::string_view text);

}  // namespace hashd
