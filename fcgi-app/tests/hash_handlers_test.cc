#include "api/hash_handlers.h"

#include <gtest/gtest.h>

#include "api/router.h"
#include "core/json.h"
#include "core/text.h"
#include "hashing/bcrypt.h"
#include "test_support.h"

namespace hashd {
namespace {

using testing::Get;
using testing::Harness;
using testing::JsonPost;
using testing::Serve;

Json::Value Body(const Response& response) {
    auto parsed = ParseJsonObject(response.body);
    EXPECT_TRUE(parsed.ok()) << response.body;
    return parsed.ok() ? parsed.value() : Json::Value();
}

TEST(HashHandler, ReturnsSaltHashAndBcryptThatVerify) {
    Harness h;
    Response r = Serve(JsonPost("/v1/hash", R"({"password":"hunter2","cost":5})"), h.services);
    ASSERT_EQ(r.status, 200) << r.body;
    Json::Value body = Body(r);
    const std::string bcrypt = body["bcrypt"].asString();
    EXPECT_EQ(body["cost"].asInt(), 5);
    EXPECT_EQ(bcrypt.substr(0, 7), "$2b$05$");
    EXPECT_EQ(HexDecode(body["hash"].asString()), bcrypt);
    EXPECT_EQ(HexDecode(body["salt"].asString()), bcrypt.substr(0, 29));
    EXPECT_TRUE(BcryptVerify("hunter2", bcrypt).value());
    EXPECT_EQ(h.metrics.hashes, 1);
}

TEST(HashHandler, UsesTheDefaultCostAndAcceptsForms) {
    Harness h;
    Request form = JsonPost("/v1/hash", "password=hunter%202");
    form.content_type = "application/x-www-form-urlencoded";
    Response r = Serve(form, h.services);
    ASSERT_EQ(r.status, 200) << r.body;
    Json::Value body = Body(r);
    EXPECT_EQ(body["cost"].asInt(), 4);
    EXPECT_TRUE(BcryptVerify("hunter 2", body["bcrypt"].asString()).value());
}

struct BadInput {
    std::string body;
    int status;
    std::string code;
    // gtest prints parameters in failure messages: show the body, not the struct's bytes.
    friend void PrintTo(const BadInput& input, std::ostream* out) { *out << input.body; }
};

class HashHandlerRejects : public ::testing::TestWithParam<BadInput> {};

TEST_P(HashHandlerRejects, WithAJsonErrorNamingTheRule) {
    Harness h;
    Response r = Serve(JsonPost("/v1/hash", GetParam().body), h.services);
    EXPECT_EQ(r.status, GetParam().status) << r.body;
    Json::Value body = Body(r);
    EXPECT_EQ(body["error"].asString(), GetParam().code);
    EXPECT_EQ(body["request_id"].asString(), "test-request-id");
    EXPECT_FALSE(body["err_msg"].asString().empty());
    EXPECT_EQ(h.metrics.hashes, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Inputs, HashHandlerRejects,
    ::testing::Values(BadInput{R"({"password":""})", 400, "password_empty"},
                      BadInput{R"({"password":")" + std::string(73, 'a') + R"("})", 400,
                               "password_too_long"},
                      BadInput{R"({"password":"a\u0000b"})", 400, "password_contains_nul"},
                      BadInput{"{\"password\":\"\xC3\x28\"}", 400, "password_not_utf8"},
                      BadInput{R"({"password":"x","cost":3})", 400, "invalid_cost"},
                      BadInput{R"({"password":"x","cost":7})", 400, "invalid_cost"},
                      BadInput{R"({"password":"x","cost":"high"})", 400, "invalid_field"},
                      BadInput{R"({"password":"x","cost":4.5})", 400, "invalid_field"},
                      BadInput{R"({"password":12})", 400, "invalid_field"},
                      BadInput{R"({"pass":"x"})", 400, "missing_field"},
                      BadInput{R"({"password":"x")", 400, "invalid_json"},
                      BadInput{R"(["password"])", 400, "invalid_json"},
                      BadInput{R"({"password":"x","password":"y"})", 400, "invalid_json"}),
    [](const ::testing::TestParamInfo<BadInput>& param_info) {
        return param_info.param.code + "_" + std::to_string(param_info.index);
    });

TEST(HashHandler, AcceptsExactly72BytesOfMultibyteText) {
    Harness h;
    std::string pw;
    for (int i = 0; i < 24; ++i) pw += "\xE2\x82\xAC";  // 24 x 3 bytes
    Response r = Serve(JsonPost("/v1/hash", R"({"password":")" + pw + R"("})"), h.services);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(BcryptVerify(pw, Body(r)["bcrypt"].asString()).value());
}

TEST(HashHandler, RejectsOtherContentTypesWith415) {
    Harness h;
    Request r = JsonPost("/v1/hash", "password=x");
    r.content_type = "text/plain";
    EXPECT_EQ(Serve(r, h.services).status, 415);
    r.content_type = "";
    EXPECT_EQ(Serve(r, h.services).status, 415);
}

TEST(VerifyHandler, MatchesAndReportsRehashNeeds) {
    Harness h;
    const std::string weak = BcryptHashPassword("pw", 4).value().hash;  // at default (4)
    const std::string strong = BcryptHashPassword("pw", 5).value().hash;
    std::string legacy = weak;
    legacy[2] = 'a';  // same hash under the $2a$ prefix: verifies, but must be upgraded

    auto verify = [&](const std::string& pw, const std::string& hash) {
        return Serve(
            JsonPost("/v1/verify", R"({"password":")" + pw + R"(","hash":")" + hash + R"("})"),
            h.services);
    };
    Json::Value ok = Body(verify("pw", strong));
    EXPECT_TRUE(ok["match"].asBool());
    EXPECT_FALSE(ok["needs_rehash"].asBool());
    EXPECT_FALSE(Body(verify("px", strong))["match"].asBool());
    EXPECT_TRUE(Body(verify("pw", HexEncode(strong)))["match"].asBool());  // hex form

    h.config.cost_default = 5;
    EXPECT_TRUE(Body(verify("pw", weak))["needs_rehash"].asBool());
    h.config.cost_default = 4;
    Json::Value old = Body(verify("pw", legacy));
    EXPECT_TRUE(old["match"].asBool());
    EXPECT_TRUE(old["needs_rehash"].asBool());
}

TEST(VerifyHandler, RefusesMalformedAndTooExpensiveHashes) {
    Harness h;
    auto status = [&](const std::string& hash) {
        Response r = Serve(JsonPost("/v1/verify", R"({"password":"pw","hash":")" + hash + R"("})"),
                           h.services);
        return std::make_pair(r.status, Body(r)["error"].asString());
    };
    EXPECT_EQ(status("not-a-hash"), std::make_pair(400, std::string("invalid_hash")));
    EXPECT_EQ(status("$2b$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
              std::make_pair(400, std::string("hash_cost_too_high")));
}

TEST(LegacyGetHash, ReturnsTheOriginalBodyAndDeprecationHeaders) {
    Harness h;
    Response r = Serve(Get("/gethash/hunter%202/"), h.services);
    ASSERT_EQ(r.status, 200) << r.body;
    Json::Value body = Body(r);
    EXPECT_EQ(body.getMemberNames(), (std::vector<std::string>{"hash", "salt"}));
    const std::string bcrypt = *HexDecode(body["hash"].asString());
    EXPECT_EQ(*HexDecode(body["salt"].asString()), bcrypt.substr(0, 29));
    EXPECT_TRUE(BcryptVerify("hunter 2", bcrypt).value());
    ASSERT_NE(r.FindHeader("Deprecation"), nullptr);
    EXPECT_EQ(*r.FindHeader("Cache-Control"), "no-store");
    EXPECT_EQ(Serve(Get("/gethash/hunter2"), h.services).status, 200);
    EXPECT_EQ(h.metrics.legacy_gets, 2);
}

TEST(LegacyGetHash, AnswersGoneWhenSwitchedOff) {
    Harness h;
    h.config.legacy_get = false;
    Response r = Serve(Get("/gethash/hunter2/"), h.services);
    EXPECT_EQ(r.status, 410);
    EXPECT_NE(Body(r)["err_msg"].asString().find("/v1/hash"), std::string::npos);
}

TEST(LegacyGetHash, RejectsEmptyNestedAndTooLongPasswords) {
    Harness h;
    // "//" is not a canonical path: the router refuses it before the handler (invalid_path).
    EXPECT_EQ(Serve(Get("/gethash//"), h.services).status, 400);
    EXPECT_EQ(Serve(Get("/gethash/a/b/"), h.services).status, 404);
    EXPECT_EQ(Serve(Get("/gethash/" + std::string(73, 'x') + "/"), h.services).status, 400);
    EXPECT_EQ(Serve(Get("/gethash/a%00b/"), h.services).status, 400);
}

TEST(Router, Answers404And405WithAllow) {
    Harness h;
    Dispatch unknown = RouteRequest(Get("/nope"), h.services);
    EXPECT_EQ(unknown.response.status, 404);
    EXPECT_EQ(unknown.label, "unmatched");
    Dispatch wrong = RouteRequest(Get("/v1/hash"), h.services);
    EXPECT_EQ(wrong.response.status, 405);
    ASSERT_NE(wrong.response.FindHeader("Allow"), nullptr);
    EXPECT_EQ(*wrong.response.FindHeader("Allow"), "POST");
    EXPECT_EQ(Body(wrong.response)["error"].asString(), "method_not_allowed");
}

TEST(Router, ReadyzNamesTheFailingCheck) {
    Harness h;
    EXPECT_EQ(RouteRequest(Get("/readyz"), h.services).response.status, 200);
    h.store.down = true;
    Response down = RouteRequest(Get("/readyz"), h.services).response;
    EXPECT_EQ(down.status, 503);
    EXPECT_NE(Body(down)["err_msg"].asString().find("store"), std::string::npos);
    h.store.down = false;
    h.draining = true;
    EXPECT_EQ(Body(RouteRequest(Get("/readyz"), h.services).response)["error"].asString(),
              "draining");
    EXPECT_EQ(RouteRequest(Get("/healthz"), h.services).response.status, 200);
}

}  // namespace
}  // namespace hashd
