#include "hashing/bcrypt.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

namespace hashd {
namespace {

TEST(Bcrypt, HashHasTheShapeOfA2bString) {
    auto hash = BcryptHashPassword("hunter2", 4);
    ASSERT_TRUE(hash.ok());
    EXPECT_EQ(hash.value().setting.size(), 29u);
    EXPECT_EQ(hash.value().hash.size(), 60u);
    EXPECT_EQ(hash.value().hash.substr(0, 7), "$2b$04$");
    EXPECT_EQ(hash.value().hash.substr(0, 29), hash.value().setting);
    EXPECT_EQ(hash.value().cost, 4);
}

TEST(Bcrypt, VerifiesTheRightPasswordOnly) {
    auto hash = BcryptHashPassword("correct horse", 4);
    ASSERT_TRUE(hash.ok());
    EXPECT_TRUE(BcryptVerify("correct horse", hash.value().hash).value());
    EXPECT_FALSE(BcryptVerify("correct horsf", hash.value().hash).value());
}

TEST(Bcrypt, VerifiesAKnownVectorFromAnotherImplementation) {
    // OpenBSD's test vector (also in python-bcrypt's test suite).
    const char* hash = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
    EXPECT_TRUE(BcryptVerify("U*U", hash).value());
    EXPECT_FALSE(BcryptVerify("U*V", hash).value());
}

TEST(Bcrypt, SaltsAreFreshEachTime) {
    std::set<std::string> salts;
    for (int i = 0; i < 8; ++i) salts.insert(BcryptHashPassword("same", 4).value().setting);
    EXPECT_EQ(salts.size(), 8u);
}

TEST(Bcrypt, RefusesWhatItCannotHashExactly) {
    EXPECT_FALSE(BcryptHashPassword(std::string(73, 'a'), 4).ok());
    EXPECT_FALSE(BcryptHashPassword(std::string("a\0b", 3), 4).ok());
    EXPECT_FALSE(BcryptHashPassword("ok", 3).ok());
    EXPECT_FALSE(BcryptHashPassword("ok", 32).ok());
}

TEST(Bcrypt, ParsesVariantAndCostAndRejectsNonBcrypt) {
    auto parts = ParseBcrypt("$2y$11$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW");
    ASSERT_TRUE(parts.ok());
    EXPECT_EQ(parts.value().variant, "2y");
    EXPECT_EQ(parts.value().cost, 11);
    EXPECT_FALSE(ParseBcrypt("$1$abc").ok());
    EXPECT_FALSE(ParseBcrypt("$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW").ok());
    EXPECT_FALSE(ParseBcrypt("$2b$03$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW").ok());
    EXPECT_FALSE(ParseBcrypt("$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe!").ok());
}

TEST(Bcrypt, IsSafeToCallFromManyThreads) {
    std::vector<std::string> hashes(8);
    {
        std::vector<std::jthread> threads;
        for (std::size_t i = 0; i < hashes.size(); ++i)
            threads.emplace_back([&, i] {
                hashes[i] = BcryptHashPassword("pw" + std::to_string(i), 4).value().hash;
            });
    }
    for (std::size_t i = 0; i < hashes.size(); ++i)
        EXPECT_TRUE(BcryptVerify("pw" + std::to_string(i), hashes[i]).value()) << i;
}

}  // namespace
}  // namespace hashd
