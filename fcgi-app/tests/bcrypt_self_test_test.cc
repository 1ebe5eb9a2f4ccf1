// The start-up self-test: passes with the real engine, and refuses (the process would not
// start) when the engine's answers differ from libxcrypt's in any lane configuration.

#include "hashing/bcrypt_self_test.h"

#include <gtest/gtest.h>

namespace hashd {
namespace {

TEST(BcryptSelfTest, PassesWithTheRealEngineAtEveryLaneCount) {
    for (int lanes = 1; lanes <= kBcryptMaxLanes; ++lanes)
        EXPECT_TRUE(BcryptSelfTest(lanes).ok()) << lanes;
}

TEST(BcryptSelfTest, RefusesWhenOneAnswerDiffers) {
    // The injected fault: one bit of one answer, as a miscompiled lane would produce.
    const auto tampered = [](std::span<const BcryptInput> inputs, int lanes) {
        auto results = BcryptCompute(inputs, lanes);
        std::string changed = results.at(5).value();
        changed.back() = changed.back() == 'a' ? 'b' : 'a';
        results.at(5) = changed;
        return results;
    };
    const Status status = BcryptSelfTest(3, tampered);
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code, "bcrypt_self_test_failed");
    EXPECT_NE(status.error().message.find("differs from libxcrypt"), std::string::npos);
    // It names the case by its shape, never by the password.
    EXPECT_NE(status.error().message.find("-byte password"), std::string::npos);
    EXPECT_EQ(status.error().message.find("U*U"), std::string::npos);
}

TEST(BcryptSelfTest, RefusesWhenOnlyTheInterleavedPathIsWrong) {
    // Right one lane at a time, wrong when several are interleaved: both paths are tested.
    const auto wrong_when_batched = [](std::span<const BcryptInput> inputs, int lanes) {
        auto results = BcryptCompute(inputs, lanes);
        if (lanes > 1) results.at(0) = Error{ErrorKind::kInternal, "x", "lost"};
        return results;
    };
    EXPECT_FALSE(BcryptSelfTest(2, wrong_when_batched).ok());
    EXPECT_TRUE(BcryptSelfTest(1, wrong_when_batched).ok());
}

TEST(BcryptSelfTest, RefusesAnEngineThatAnswersTooFew) {
    const auto short_answer = [](std::span<const BcryptInput> inputs, int lanes) {
        auto results = BcryptCompute(inputs, lanes);
        results.pop_back();
        return results;
    };
    EXPECT_FALSE(BcryptSelfTest(3, short_answer).ok());
}

}  // namespace
}  // namespace hashd
