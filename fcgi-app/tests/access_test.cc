#include "api/access.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/sha256.h"
#include "http/errors.h"

namespace hashd {
namespace {

// Tokens of the documented shape: hashd_<id>_<43 base64url>.
const std::string kAliceOld = "hashd_alice_" + std::string(42, 'A') + "_";
const std::string kAliceNew = "hashd_alice_" + std::string(43, 'b');
const std::string kBob = "hashd_bob_" + std::string(40, 'c') + "-_9";
const std::string kDn = "CN=billing service,O=Example Corp,C=PT";

AccessPolicy Policy(std::string_view text) {
    auto policy = ParseAccessPolicy(text);
    EXPECT_TRUE(policy.ok()) << (policy.ok() ? "" : policy.error().message);
    return policy.ok() ? policy.value() : AccessPolicy{};
}

std::string ClientsFile() {
    return "# comment\n"
           "\n"
           "token alice " +
           Sha256Hex(kAliceOld) +
           " hash,verify\n"
           "token alice " +
           Sha256Hex(kAliceNew) +
           " hash,verify\n"
           "token bob " +
           Sha256Hex(kBob) +
           " messages\n"
           "cert billing " +
           kDn + " all\r\n";
}

AccessControl Access(std::string_view policy) {
    auto access = AccessControl::Parse(Policy(policy), ClientsFile(), "tokens");
    EXPECT_TRUE(access.ok()) << (access.ok() ? "" : access.error().message);
    return access.ok() ? std::move(access).value() : AccessControl{};
}

std::string Bearer(const std::string& token) {
    return "Bearer " + token;
}

ErrorKind KindOf(const Result<std::string>& r) {
    EXPECT_FALSE(r.ok());
    return r.ok() ? ErrorKind::kInternal : r.error().kind;
}

TEST(AccessPolicy, ParsesGroupsModesAndAll) {
    const AccessPolicy p = Policy("hash=token,verify=any,messages=mtls,multivac=open,legacy=open");
    EXPECT_EQ(p.For(RouteGroup::kHash), AccessMode::kToken);
    EXPECT_EQ(p.For(RouteGroup::kVerify), AccessMode::kAny);
    EXPECT_EQ(p.For(RouteGroup::kMessages), AccessMode::kMtls);
    EXPECT_EQ(p.For(RouteGroup::kLegacy), AccessMode::kOpen);
    EXPECT_TRUE(p.AnyGated());
    const AccessPolicy all = Policy("all=token,legacy=open");
    EXPECT_EQ(all.For(RouteGroup::kMultivac), AccessMode::kToken);
    EXPECT_EQ(all.For(RouteGroup::kLegacy), AccessMode::kOpen);
    // Unnamed groups stay open; empty is everything open.
    EXPECT_EQ(Policy("hash=token").For(RouteGroup::kVerify), AccessMode::kOpen);
    EXPECT_FALSE(Policy("").AnyGated());
    EXPECT_FALSE(Policy("hash=open").AnyGated());
    for (const char* bad : {"hash", "hash=tokens", "hashes=token", "=token", "hash=token,x=open"})
        EXPECT_FALSE(ParseAccessPolicy(bad).ok()) << bad;
}

TEST(AccessPolicy, ConfigRefusesABadPolicyAndKeepsTodaysDefault) {
    const auto load = [](const char* auth) {
        return LoadConfig(
            [auth](const char* name) {
                return std::string_view(name) == "HASHD_AUTH" ? auth : nullptr;
            },
            {});
    };
    ASSERT_TRUE(load(nullptr).ok());
    EXPECT_EQ(load(nullptr).value().auth, "");
    EXPECT_EQ(load(nullptr).value().tokens_file, "/etc/hashd/tokens");
    EXPECT_TRUE(load("hash=token,verify=mtls").ok());
    ASSERT_FALSE(load("hash=maybe").ok());
    EXPECT_NE(load("hash=maybe").error().message.find("HASHD_AUTH"), std::string::npos);
}

TEST(Access, OpenByDefaultReadsNoFile) {
    Config config;
    config.tokens_file = "/nonexistent/tokens";
    auto access = AccessControl::Load(config);  // empty HASHD_AUTH: the file is not needed
    ASSERT_TRUE(access.ok());
    for (const char* label :
         {"/v1/hash", "/v1/verify", "/gethash", "/messages", "/multivac/data"}) {
        auto client = access.value().Check(label, {});
        ASSERT_TRUE(client.ok()) << label;
        EXPECT_EQ(client.value(), "") << label;
    }
}

TEST(Access, GatedPolicyNeedsAReadableFile) {
    Config config;
    config.auth = "hash=token";
    config.tokens_file = "/nonexistent/tokens";
    auto missing = AccessControl::Load(config);
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.error().message.find("/nonexistent/tokens"), std::string::npos);

    const std::string path = ::testing::TempDir() + "/hashd-access-test-tokens";
    std::ofstream(path) << ClientsFile();
    config.tokens_file = path;
    auto loaded = AccessControl::Load(config);
    ASSERT_TRUE(loaded.ok());
    EXPECT_EQ(loaded.value().Check("/v1/hash", {Bearer(kAliceNew), "", ""}).value(), "alice");
    std::remove(path.c_str());
}

TEST(Access, MalformedLinesNameTheLineAndNoSecret) {
    const std::string digest = Sha256Hex(kAliceOld);
    for (const std::string& line : std::vector<std::string>{
             "token alice " + digest.substr(1) + " hash",  // 63 hex digits
             "token alice " + digest + " hash,everything", "token Alice " + digest + " hash",
             "token alice " + digest, "key alice " + digest + " hash", "cert billing all"}) {
        auto parsed = AccessControl::Parse(Policy("hash=token"), "# ok\n" + line + "\n", "f");
        ASSERT_FALSE(parsed.ok()) << line;
        EXPECT_EQ(parsed.error().message.rfind("f:2: ", 0), 0u) << parsed.error().message;
        EXPECT_EQ(parsed.error().message.find(digest.substr(1, 20)), std::string::npos);
    }
}

TEST(Access, BearerTokensWithRotationOverlap) {
    const AccessControl access = Access("hash=token,verify=token,messages=token");
    // Both of alice's tokens are valid while they overlap.
    EXPECT_EQ(access.Check("/v1/hash", {Bearer(kAliceOld), "", ""}).value(), "alice");
    EXPECT_EQ(access.Check("/v1/verify", {Bearer(kAliceNew), "", ""}).value(), "alice");
    EXPECT_EQ(access.Check("/v1/hash", {"bearer " + kAliceNew, "", ""}).value(), "alice");
    EXPECT_EQ(access.Check("/messages/:digest", {Bearer(kBob), "", ""}).value(), "bob");
}

TEST(Access, MissingOrWrongTokensAre401) {
    const AccessControl access = Access("hash=token");
    std::string wrong = kAliceNew;
    wrong.back() = 'c';
    for (const std::string& authorization : std::vector<std::string>{
             std::string(), "Bearer", "Bearer ", Bearer(wrong), "Basic " + kAliceNew,
             Bearer("hashd_alice_short"), Bearer("hashd_carol_" + std::string(43, 'b')),
             Bearer(kAliceNew + "x"), Bearer(Sha256Hex(kAliceNew))})
        EXPECT_EQ(KindOf(access.Check("/v1/hash", {authorization, "", ""})),
                  ErrorKind::kUnauthenticated)
            << authorization;
    // Bob's token with alice's id in front: the digest is looked up under the id it names.
    const std::string bob_as_alice = "hashd_alice_" + kBob.substr(std::string("hashd_bob_").size());
    EXPECT_EQ(KindOf(access.Check("/v1/hash", {Bearer(bob_as_alice), "", ""})),
              ErrorKind::kUnauthenticated);
    // A 401 is the usual JSON error, with the challenge.
    const Response r = ErrorResponse(access.Check("/v1/hash", {}).error(), "rid");
    EXPECT_EQ(r.status, 401);
    ASSERT_NE(r.FindHeader("WWW-Authenticate"), nullptr);
    EXPECT_EQ(*r.FindHeader("WWW-Authenticate"), "Bearer");
    EXPECT_NE(r.body.find("\"error\":\"unauthenticated\""), std::string::npos) << r.body;
}

TEST(Access, KnownClientOnAnotherGroupIs403) {
    const AccessControl access = Access("hash=token,messages=token");
    const auto bob = access.Check("/v1/hash", {Bearer(kBob), "", ""});
    EXPECT_EQ(KindOf(bob), ErrorKind::kForbidden);
    EXPECT_EQ(ErrorResponse(bob.error(), "rid").status, 403);
    EXPECT_EQ(KindOf(access.Check("/messages", {Bearer(kAliceNew), "", ""})),
              ErrorKind::kForbidden);
}

TEST(Access, MtlsTrustsTheDnOnlyWhenNginxVerifiedIt) {
    const AccessControl access = Access("messages=mtls,hash=any");
    EXPECT_EQ(access.Check("/messages", {"", "SUCCESS", kDn}).value(), "billing");
    for (const char* verify : {"NONE", "FAILED:certificate has expired", "success", ""})
        EXPECT_EQ(KindOf(access.Check("/messages", {"", verify, kDn})), ErrorKind::kUnauthenticated)
            << verify;
    EXPECT_EQ(KindOf(access.Check("/messages", {"", "SUCCESS", "CN=billing service"})),
              ErrorKind::kUnauthenticated);
    // mtls-only: a token does not count.
    EXPECT_EQ(KindOf(access.Check("/messages", {Bearer(kBob), "", ""})),
              ErrorKind::kUnauthenticated);
    // any: either credential.
    EXPECT_EQ(access.Check("/v1/hash", {"", "SUCCESS", kDn}).value(), "billing");
    EXPECT_EQ(access.Check("/v1/hash", {Bearer(kAliceOld), "", ""}).value(), "alice");
}

TEST(Access, ProbesMetricsAndWelcomeAreNeverGated) {
    const AccessControl access = Access("all=token");
    for (const char* label :
         {"/healthz", "/readyz", "/readyz/serving", "/metrics", "/", "unmatched"}) {
        auto client = access.Check(label, {});
        ASSERT_TRUE(client.ok()) << label;
        EXPECT_EQ(client.value(), "");
    }
    EXPECT_EQ(KindOf(access.Check("/gethash", {})), ErrorKind::kUnauthenticated);
    EXPECT_EQ(KindOf(access.Check("/multivac", {})), ErrorKind::kUnauthenticated);
}

}  // namespace
}  // namespace hashd
