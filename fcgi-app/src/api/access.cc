#include "api/access.h"

#include <openssl/crypto.h>

#include <fstream>
#include <sstream>

#include "core/secret.h"
#include "core/sha256.h"

namespace hashd {
namespace {

constexpr std::size_t kDigestHex = 64;
constexpr std::size_t kTokenSecretChars = 43;  // 32 random bytes in base64url, no padding

Error Unauthenticated(std::string message) {
    return {ErrorKind::kUnauthenticated, "unauthenticated", std::move(message)};
}

bool IsIdChar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

// scripts/hashd-token's rule: [a-z0-9][a-z0-9-]{0,31}.
bool IsClientId(std::string_view id) {
    if (id.empty() || id.size() > 32 || id.front() == '-') return false;
    for (char c : id)
        if (!IsIdChar(c)) return false;
    return true;
}

bool IsBase64Url(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

// The client id a token of the documented shape names; "" when it is not of that shape.
std::string_view TokenClientId(std::string_view token) {
    constexpr std::string_view kPrefix = "hashd_";
    if (!token.starts_with(kPrefix)) return {};
    const std::string_view rest = token.substr(kPrefix.size());
    const std::size_t sep = rest.find('_');  // ids have no '_'; the secret may
    if (sep == std::string_view::npos) return {};
    const std::string_view id = rest.substr(0, sep);
    const std::string_view secret = rest.substr(sep + 1);
    if (!IsClientId(id) || secret.size() != kTokenSecretChars) return {};
    for (char c : secret)
        if (!IsBase64Url(c)) return {};
    return id;
}

std::string_view Trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r'))
        text.remove_suffix(1);
    return text;
}

// The first whitespace-separated word of `text`, and `text` advanced past it.
std::string_view NextWord(std::string_view& text) {
    text = Trim(text);
    std::size_t end = 0;
    while (end < text.size() && text[end] != ' ' && text[end] != '\t') ++end;
    const std::string_view word = text.substr(0, end);
    text.remove_prefix(end);
    return word;
}

bool ParseGroups(std::string_view text, std::array<bool, kRouteGroups>& groups) {
    std::size_t pos = 0;
    bool any = false;
    while (pos <= text.size()) {
        std::size_t comma = text.find(',', pos);
        if (comma == std::string_view::npos) comma = text.size();
        const std::string_view name = text.substr(pos, comma - pos);
        pos = comma + 1;
        if (name == "all") {
            groups.fill(true);
        } else if (const auto group = RouteGroupNamed(name)) {
            groups[static_cast<std::size_t>(*group)] = true;
        } else {
            return false;
        }
        any = true;
    }
    return any;
}

bool IsLowerHexDigest(std::string_view text) {
    if (text.size() != kDigestHex) return false;
    for (char c : text)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

std::string Lower(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

bool CaseInsensitiveEqual(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

}  // namespace

Result<AccessControl> AccessControl::Parse(AccessPolicy policy, std::string_view text,
                                           std::string_view file) {
    AccessControl access;
    access.policy_ = policy;
    std::size_t number = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = Trim(text.substr(pos, end - pos));
        pos = end + 1;
        ++number;
        if (line.empty() || line.front() == '#') continue;
        const auto bad = [&](const char* why) {
            return Error{ErrorKind::kInternal, "invalid_setting",
                         std::string(file) + ":" + std::to_string(number) + ": " + why};
        };
        const std::string_view kind = NextWord(line);
        const std::string_view id = NextWord(line);
        // The groups are the last word: a DN may hold spaces.
        line = Trim(line);
        const std::size_t last_space = line.find_last_of(" \t");
        if (last_space == std::string_view::npos)
            return bad("expected `token|cert <client-id> <digest|DN> <route-groups>`");
        const std::string_view secret = Trim(line.substr(0, last_space));
        Entry entry;
        entry.client_id = id;
        if (!IsClientId(id)) return bad("the client id is not [a-z0-9-], at most 32 characters");
        if (!ParseGroups(line.substr(last_space + 1), entry.groups))
            return bad(
                "route groups must be comma-separated from "
                "hash,verify,legacy,messages,multivac,all");
        if (kind == "token") {
            if (secret.find_first_of(" \t") != std::string_view::npos ||
                !IsLowerHexDigest(Lower(secret)))
                return bad("a token's digest must be 64 hex digits (SHA-256)");
            entry.secret = Lower(secret);
            access.tokens_.push_back(std::move(entry));
        } else if (kind == "cert") {
            if (secret.empty()) return bad("a cert line needs the subject DN");
            entry.secret = secret;
            access.certs_.push_back(std::move(entry));
        } else {
            return bad("an entry starts with `token` or `cert`");
        }
    }
    return access;
}

Result<AccessControl> AccessControl::Load(const Config& config) {
    auto policy = ParseAccessPolicy(config.auth);
    if (!policy.ok()) return policy.error();
    if (!policy.value().AnyGated()) return AccessControl{};
    std::ifstream in(config.tokens_file, std::ios::binary);
    std::ostringstream text;
    if (in) text << in.rdbuf();
    if (!in || in.bad())
        return Error{ErrorKind::kInternal, "invalid_setting",
                     config.tokens_file +
                         ": cannot read the API clients file (HASHD_TOKENS_FILE), "
                         "which HASHD_AUTH needs"};
    std::string contents = text.str();
    auto access = Parse(policy.value(), contents, config.tokens_file);
    Wipe(contents);
    return access;
}

std::optional<RouteGroup> AccessControl::GroupOfRoute(std::string_view label) {
    if (label == "/v1/hash") return RouteGroup::kHash;
    if (label == "/v1/verify") return RouteGroup::kVerify;
    if (label == "/gethash") return RouteGroup::kLegacy;
    if (label == "/messages" || label == "/messages/:digest") return RouteGroup::kMessages;
    if (label == "/multivac" || label == "/multivac/data") return RouteGroup::kMultivac;
    return std::nullopt;
}

Result<const AccessControl::Entry*> AccessControl::ByToken(std::string_view authorization) const {
    constexpr std::string_view kScheme = "bearer ";
    if (authorization.size() <= kScheme.size() ||
        !CaseInsensitiveEqual(authorization.substr(0, kScheme.size()), kScheme))
        return Unauthenticated("Send an API token as `Authorization: Bearer <token>`.");
    const std::string_view token = Trim(authorization.substr(kScheme.size()));
    const std::string_view id = TokenClientId(token);
    if (id.empty())
        return Unauthenticated("That is not an API token (hashd_<client-id>_<43 characters>).");
    const std::string digest = Sha256Hex(token);
    // Every digest of the id is compared, each in constant time, with no early exit: the time
    // depends only on how many tokens the id has, never on how much of a digest matched.
    const Entry* found = nullptr;
    for (const Entry& entry : tokens_) {
        if (entry.client_id != id) continue;
        const bool same = CRYPTO_memcmp(entry.secret.data(), digest.data(), kDigestHex) == 0;
        if (same) found = &entry;
    }
    if (found == nullptr)
        return Unauthenticated("The API token is not valid (revoked, expired or mistyped).");
    return found;
}

Result<const AccessControl::Entry*> AccessControl::ByCertificate(
    const Credentials& credentials) const {
    if (credentials.client_verify != "SUCCESS" || credentials.client_dn.empty())
        return Unauthenticated("This route needs a client certificate the server verifies.");
    for (const Entry& entry : certs_)
        if (entry.secret == credentials.client_dn) return &entry;
    return Unauthenticated("The client certificate is not one of this service's clients.");
}

Result<std::string> AccessControl::Check(std::string_view label,
                                         const Credentials& credentials) const {
    const auto group = GroupOfRoute(label);
    if (!group) return std::string();
    const AccessMode mode = policy_.For(*group);
    if (mode == AccessMode::kOpen) return std::string();
    // With `any`, a request that sends a token is judged by it; else by its certificate.
    const bool by_token = mode == AccessMode::kToken ||
                          (mode == AccessMode::kAny && !credentials.authorization.empty());
    auto entry = by_token ? ByToken(credentials.authorization) : ByCertificate(credentials);
    if (!entry.ok()) return entry.error();
    const Entry& client = *entry.value();
    if (!client.groups[static_cast<std::size_t>(*group)])
        return Error{ErrorKind::kForbidden, "forbidden",
                     "This client may not use " + std::string(label) +
                         "; ask for access to "
                         "the route group '" +
                         RouteGroupName(*group) + "'."};
    return client.client_id;
}

}  // namespace hashd
