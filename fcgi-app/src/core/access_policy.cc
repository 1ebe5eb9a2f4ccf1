#include "core/access_policy.h"

#include <string>

namespace hashd {
namespace {

constexpr const char* kGroupNames[kRouteGroups] = {"hash", "verify", "legacy", "messages",
                                                   "multivac"};

std::optional<AccessMode> ModeNamed(std::string_view name) {
    if (name == "open") return AccessMode::kOpen;
    if (name == "token") return AccessMode::kToken;
    if (name == "mtls") return AccessMode::kMtls;
    if (name == "any") return AccessMode::kAny;
    return std::nullopt;
}

Error PolicyError(std::string message) {
    return {ErrorKind::kInternal, "invalid_setting", "HASHD_AUTH: " + std::move(message)};
}

}  // namespace

std::optional<RouteGroup> RouteGroupNamed(std::string_view name) {
    for (std::size_t i = 0; i < kRouteGroups; ++i)
        if (name == kGroupNames[i]) return static_cast<RouteGroup>(i);
    return std::nullopt;
}

const char* RouteGroupName(RouteGroup group) {
    return kGroupNames[static_cast<std::size_t>(group)];
}

bool AccessPolicy::AnyGated() const {
    for (AccessMode mode : modes)
        if (mode != AccessMode::kOpen) return true;
    return false;
}

Result<AccessPolicy> ParseAccessPolicy(std::string_view text) {
    AccessPolicy policy;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t comma = text.find(',', pos);
        if (comma == std::string_view::npos) comma = text.size();
        const std::string_view entry = text.substr(pos, comma - pos);
        pos = comma + 1;
        if (entry.empty()) continue;  // "a=b,,c=d" and a trailing comma are harmless
        const std::size_t eq = entry.find('=');
        if (eq == std::string_view::npos)
            return PolicyError("entry '" + std::string(entry) + "' is not group=mode");
        const std::string_view group = entry.substr(0, eq);
        const auto mode = ModeNamed(entry.substr(eq + 1));
        if (!mode)
            return PolicyError("mode '" + std::string(entry.substr(eq + 1)) +
                               "' is not one of open, token, mtls, any");
        if (group == "all") {
            policy.modes.fill(*mode);
            continue;
        }
        const auto named = RouteGroupNamed(group);
        if (!named)
            return PolicyError("group '" + std::string(group) +
                               "' is not one of hash, verify, legacy, messages, multivac, all");
        policy.modes[static_cast<std::size_t>(*named)] = *mode;
    }
    return policy;
}

}  // namespace hashd
