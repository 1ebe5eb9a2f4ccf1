// Hostile and malformed input through the router, as a client can send it: every refusal is
// a 4xx with the JSON error shape, never a thrown exception (which the request loop would
// turn into a 500 and page on-call) and never a silent reinterpretation.

#include <gtest/gtest.h>

#include <string>

#include "api/router.h"
#include "core/json.h"
#include "core/secret.h"
#include "http/errors.h"
#include "test_support.h"

namespace hashd {
namespace {

using testing::Harness;
using testing::JsonPost;

Request FormPost(std::string path, std::string body) {
    Request r = JsonPost(std::move(path), std::move(body));
    r.content_type = "application/x-www-form-urlencoded";
    return r;
}

std::string ErrorCode(const Response& response) {
    auto body = ParseJsonObject(response.body);
    return body.ok() ? body.value()["error"].asString() : "(not JSON: " + response.body + ")";
}

TEST(HostileInput, JsonNestedBeyondTheLimitIs400OnEveryJsonRoute) {
    Harness h;
    const std::string deep = std::string(200, '[') + std::string(200, ']');
    for (const auto& [path, field] :
         {std::pair{"/v1/hash", "password"}, std::pair{"/v1/verify", "password"},
          std::pair{"/messages", "message"}}) {
        SCOPED_TRACE(path);
        Dispatch d = RouteRequest(JsonPost(path, "{\"" + std::string(field) + "\":" + deep + "}"),
                                  h.services);
        EXPECT_EQ(d.response.status, 400) << d.response.body;
        EXPECT_EQ(ErrorCode(d.response), "invalid_json");
    }
    // Nesting within the limit is still only a type error.
    Dispatch d = RouteRequest(JsonPost("/v1/hash", R"({"password":[[[1]]]})"), h.services);
    EXPECT_EQ(ErrorCode(d.response), "invalid_field");
}

TEST(HostileInput, LoneSurrogateEscapesAreRefusedNotConverted) {
    Harness h;
    for (const char* body : {R"({"password":"\ud800\u0041"})", R"({"password":"\udc00abc"})",
                             R"({"password":"x\ud800"})", R"({"password":"\uDBFF\uD800"})"}) {
        SCOPED_TRACE(body);
        Dispatch d = RouteRequest(JsonPost("/v1/hash", body), h.services);
        EXPECT_EQ(d.response.status, 400) << d.response.body;
        EXPECT_EQ(ErrorCode(d.response), "invalid_json");
    }
    Dispatch message =
        RouteRequest(JsonPost("/messages", R"({"message":"\ud800\u0041"})"), h.services);
    EXPECT_EQ(message.response.status, 400);
    EXPECT_TRUE(h.store.entries.empty());
    // A real pair (U+1F600) and an escaped backslash before "ud800" are fine.
    EXPECT_EQ(RouteRequest(JsonPost("/v1/hash", R"({"password":"\ud83d\ude00"})"), h.services)
                  .response.status,
              200);
    EXPECT_EQ(
        RouteRequest(JsonPost("/v1/hash", R"({"password":"\\ud800"})"), h.services).response.status,
        200);
}

TEST(HostileInput, CostMustBeAJsonInteger) {
    Harness h;
    for (const char* body : {R"({"password":"x","cost":"5"})", R"({"password":"x","cost":5.5})",
                             R"({"password":"x","cost":true})", R"({"password":"x","cost":[5]})"}) {
        SCOPED_TRACE(body);
        Dispatch d = RouteRequest(JsonPost("/v1/hash", body), h.services);
        EXPECT_EQ(d.response.status, 400) << d.response.body;
        EXPECT_EQ(ErrorCode(d.response), "invalid_field");
    }
    // A form has only strings: there "cost=5" is the integer 5.
    EXPECT_EQ(RouteRequest(FormPost("/v1/hash", "password=x&cost=5"), h.services).response.status,
              200);
}

TEST(HostileInput, MalformedFormEncodingIsNamedAsSuch) {
    Harness h;
    for (const char* body : {"password=%ZZ", "password=ab%4", "cost=5&password=%"}) {
        SCOPED_TRACE(body);
        Dispatch d = RouteRequest(FormPost("/v1/hash", body), h.services);
        EXPECT_EQ(d.response.status, 400) << d.response.body;
        EXPECT_EQ(ErrorCode(d.response), "invalid_encoding");
    }
    EXPECT_EQ(ErrorCode(RouteRequest(FormPost("/v1/hash", "cost=5"), h.services).response),
              "missing_field");
}

TEST(HostileInput, The413OfAPasswordRouteTalksAboutPasswords) {
    EXPECT_NE(BodyTooLarge("/v1/hash").message.find("password"), std::string::npos);
    EXPECT_EQ(BodyTooLarge("/v1/hash").message.find("message"), std::string::npos);
    EXPECT_NE(BodyTooLarge("/messages").message.find("message"), std::string::npos);
    EXPECT_EQ(StatusOf(BodyTooLarge("/v1/verify").kind), 413);
}

TEST(Wiping, WipeOverwritesEveryByteTheStringOwns) {
    std::string text(100, 'p');
    text.resize(10);  // 90 bytes of the old value stay in the buffer
    const char* buffer = text.data();
    const std::size_t capacity = text.capacity();
    Wipe(text);
    EXPECT_TRUE(text.empty());
    ASSERT_EQ(text.data(), buffer);  // clear() keeps the buffer: it is still ours to read
    for (std::size_t i = 0; i < capacity; ++i) ASSERT_EQ(buffer[i], '\0') << i;
}

TEST(Wiping, AMovedFromSecretHoldsNothing) {
    Secret first("correct horse battery staple, long enough for the heap");
    Secret second(std::move(first));
    EXPECT_EQ(second.view(), "correct horse battery staple, long enough for the heap");
    EXPECT_EQ(first.size(), 0u);  // NOLINT(bugprone-use-after-move): that is the point
    Secret small("pw");           // in the string's inline buffer
    Secret moved(std::move(small));
    EXPECT_EQ(moved.view(), "pw");
    EXPECT_EQ(small.size(), 0u);  // NOLINT(bugprone-use-after-move)
}

TEST(Wiping, WipeStringsEmptiesEveryStringOfATree) {
    auto parsed = ParseJsonObject(R"({"password":"hunter2","nested":{"a":["secret",1]}})");
    ASSERT_TRUE(parsed.ok());
    Json::Value tree = parsed.value();
    WipeStrings(tree);
    EXPECT_TRUE(tree.isNull());
}

}  // namespace
}  // namespace hashd
