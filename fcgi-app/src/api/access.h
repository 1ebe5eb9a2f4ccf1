#pragma once
// API access control, the application half (DESIGN.md "Who may call"): which client a request
// comes from, and whether that client may use the route's group under HASHD_AUTH.
//
// The clients file (HASHD_TOKENS_FILE, rendered by Ansible from hashd_api_clients), one entry
// a line, `#` comments and blank lines ignored:
//   token <client-id> <sha256 hex of the bearer token> <route-groups>
//   cert <client-id> <subject DN as nginx's $ssl_client_s_dn, may hold spaces> <route-groups>
// route-groups: comma-separated from hash, verify, legacy, messages, multivac, all. Several
// token lines may share a client id (rotation: old and new token valid at once).
//
// Tokens are `hashd_<client-id>_<43 base64url characters>` (scripts/hashd-token). Only their
// SHA-256 is kept; a presented token is hashed and compared in constant time with every
// digest of the id it names. A certificate counts only when nginx verified it
// (HASHD_CLIENT_VERIFY is exactly SUCCESS); its DN is then matched exactly.
//
// Everything here is cheap (one SHA-256 at most): the check runs on the accepting thread
// before admission, so a request without a credential never costs a bcrypt hash.

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "core/access_policy.h"
#include "core/config.h"
#include "core/result.h"

namespace hashd {

// What the request brings: nginx's fastcgi params HTTP_AUTHORIZATION, HASHD_CLIENT_VERIFY,
// HASHD_CLIENT_DN ("" when absent).
struct Credentials {
    std::string_view authorization;
    std::string_view client_verify;
    std::string_view client_dn;
};

class AccessControl {
  public:
    // Everything open: what an empty HASHD_AUTH means.
    AccessControl() = default;

    // The clients file's text checked line by line; an error names `file` and the line number
    // (never a digest or a DN).
    static Result<AccessControl> Parse(AccessPolicy policy, std::string_view text,
                                       std::string_view file);

    // From the settings: HASHD_AUTH, and HASHD_TOKENS_FILE read only when some group is gated
    // (unreadable or malformed: an error naming the file).
    static Result<AccessControl> Load(const Config& config);

    // The route group of the route labelled `label` (router.h), or nullopt for routes that
    // are never gated (probes, /metrics, `/`, unmatched paths).
    static std::optional<RouteGroup> GroupOfRoute(std::string_view label);

    // The client id allowed to call the route labelled `label` with `credentials`: "" when
    // the route is open; kUnauthenticated (401) for a missing, malformed or unknown
    // credential; kForbidden (403) for a known client whose groups do not include the
    // route's.
    Result<std::string> Check(std::string_view label, const Credentials& credentials) const;

  private:
    struct Entry {
        std::string client_id;
        std::string secret;  // the token's SHA-256 hex (token) or the DN (cert)
        std::array<bool, kRouteGroups> groups{};
    };

    Result<const Entry*> ByToken(std::string_view authorization) const;
    Result<const Entry*> ByCertificate(const Credentials& credentials) const;

    AccessPolicy policy_;
    std::vector<Entry> tokens_;
    std::vector<Entry> certs_;
};

}  // namespace hashd
