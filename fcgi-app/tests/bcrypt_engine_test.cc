// The interleaved engine against published vectors and against libxcrypt (the oracle).

#include "hashing/bcrypt_engine.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "hashing/bcrypt.h"

namespace hashd {
namespace {

struct Vector {
    std::string password;
    std::string hash;
};

// Openwall's crypt_blowfish wrapper.c vectors ($2x$ ones left out: the engine does not do the
// sign-extension bug), with passwords longer than 72 bytes cut to 72 (bcrypt ignores the
// rest, the API refuses it): the 72-byte edge, with no NUL in the key.
std::vector<Vector> OpenwallVectors() {
    const std::string long_ascii =
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    std::string aa(72, '\xaa');
    std::string a55;
    for (int i = 0; i < 36; ++i) a55 += "\xaa\x55";
    std::string ff;
    for (int i = 0; i < 24; ++i) ff += "\x55\xaa\xff";
    return {
        {"U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"},
        {"U*U*", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK"},
        {"U*U*U", "$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a"},
        {long_ascii, "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui"},
        {"\xff\xff\xa3", "$2y$05$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3e"},
        // $2a$'s safety deviation: the same password and salt, a different hash.
        {"\xff\xff\xa3", "$2a$05$/OK.fbVrR/bpIqNJ5ianF.nqd1wy.pTMdcvrRWxyiGL2eMz.2a85."},
        {"\xff\xff\xa3", "$2b$05$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3e"},
        {"\xa3", "$2y$05$/OK.fbVrR/bpIqNJ5ianF.Sa7shbm4.OzKpvFnX1pQLmQW96oUlCq"},
        {"\xa3", "$2a$05$/OK.fbVrR/bpIqNJ5ianF.Sa7shbm4.OzKpvFnX1pQLmQW96oUlCq"},
        {"\xa3", "$2b$05$/OK.fbVrR/bpIqNJ5ianF.Sa7shbm4.OzKpvFnX1pQLmQW96oUlCq"},
        {"\xff\xa3"
         "34"
         "\xff\xff\xff\xa3"
         "345",
         "$2y$05$/OK.fbVrR/bpIqNJ5ianF.o./n25XVfn6oAPaUvHe.Csk4zRfsYPi"},
        {"\xff\xa3"
         "34"
         "\xff\xff\xff\xa3"
         "345",
         "$2a$05$/OK.fbVrR/bpIqNJ5ianF.ZC1JEJ8Z4gPfpe1JOr/oyPXTWl9EFd."},
        {"\xff\xa3"
         "345",
         "$2y$05$/OK.fbVrR/bpIqNJ5ianF.nRht2l/HRhr6zmCp9vYUvvsqynflf9e"},
        {"\xff\xa3"
         "345",
         "$2a$05$/OK.fbVrR/bpIqNJ5ianF.nRht2l/HRhr6zmCp9vYUvvsqynflf9e"},
        {"\xa3"
         "ab",
         "$2a$05$/OK.fbVrR/bpIqNJ5ianF.6IflQkJytoRVc1yuaNtHfiuq.FRlSIS"},
        {"\xa3"
         "ab",
         "$2y$05$/OK.fbVrR/bpIqNJ5ianF.6IflQkJytoRVc1yuaNtHfiuq.FRlSIS"},
        {aa, "$2a$05$/OK.fbVrR/bpIqNJ5ianF.swQOIzjOiJ9GHEPuhEkvqrUyvWhEMx6"},
        {a55, "$2a$05$/OK.fbVrR/bpIqNJ5ianF.R9xrDjiycxMbQE2bp.vgqlYpW5wx2yy"},
        {ff, "$2a$05$/OK.fbVrR/bpIqNJ5ianF.9tQZzcJfm3uj2NvJ/n5xkhpqLrMpWCe"},
        {"", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy"},
    };
}

// jBCrypt's vectors (Damien Miller's port of OpenBSD's bcrypt), $2a$, $2b$ and $2y$.
std::vector<Vector> OpenBsdVectors() {
    return {
        {"", "$2a$06$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s."},
        {"", "$2a$08$HqWuK6/Ng6sg9gQzbLrgb.Tl.ZHfXLhvt/SgVyWhQqgqcZ7ZuUtye"},
        {"", "$2a$10$k1wbIrmNyFAPwPVPSVa/zecw2BCEnBwVS2GbrmgzxFUOqW9dk4TCW"},
        {"", "$2b$06$8eVN9RiU8Yki430X.wBvN.LWaqh2962emLVSVXVZIXJvDYLsV0oFu"},
        {"", "$2y$06$mFDtkz6UN7B3GZ2qi2hhaO3OFWzNEdcY84ELw6iHCPruuQfSAXBLK"},
        {"a", "$2a$06$m0CrhHm10qJ3lXRY.5zDGO3rS2KdeeWLuGmsfGlMfOxih58VYVfxe"},
        {"a", "$2a$08$cfcvVd2aQ8CMvoMpP2EBfeodLEkkFJ9umNEfPD18.hUF62qqlC/V."},
        {"a", "$2b$06$ehKGYiS4wt2HAr7KQXS5z.OaRjB4jHO7rBHJKlGXbqEH3QVJfO7iO"},
        {"a", "$2y$06$LUdD6/aD0e/UbnxVAVbvGuUmIoJ3l/OK94ThhadpMWwKC34LrGEey"},
        {"abc", "$2a$06$If6bvum7DFjUnE9p2uDeDu0YHzrHM6tf.iqN8.yx.jNN1ILEf7h0i"},
        {"abc", "$2b$06$5FyQoicpbox1xSHFfhhdXuR2oxLpO1rYsQh5RTkI/9.RIjtoF0/ta"},
        {"abc", "$2y$06$ACfku9dT6.H8VjdKb8nhluaoBmhJyK7GfoNScEfOfrJffUxoUeCjK"},
    };
}

std::string Compute(const std::string& password, const std::string& setting, int lanes = 1) {
    const BcryptInput input{password, setting};
    auto results = BcryptCompute(std::span(&input, 1), lanes);
    EXPECT_TRUE(results.at(0).ok()) << results.at(0).error().message;
    return results.at(0).ok() ? results.at(0).value() : "";
}

TEST(BcryptEngine, MatchesOpenwallVectors) {
    for (const Vector& v : OpenwallVectors()) {
        EXPECT_EQ(Compute(v.password, v.hash.substr(0, 29)), v.hash);
        EXPECT_EQ(LibxcryptBcrypt(v.password, v.hash).value(), v.hash);  // the oracle agrees
    }
}

TEST(BcryptEngine, MatchesOpenBsdVectors) {
    for (const Vector& v : OpenBsdVectors()) EXPECT_EQ(Compute(v.password, v.hash), v.hash);
}

TEST(BcryptEngine, AllVectorsInOneBatchAtEveryLaneCount) {
    std::vector<Vector> all = OpenwallVectors();
    for (const Vector& v : OpenBsdVectors()) all.push_back(v);  // costs 5, 6, 8, 10 mixed
    std::vector<BcryptInput> inputs;
    for (const Vector& v : all) inputs.push_back({v.password, v.hash});
    for (int lanes = 1; lanes <= kBcryptMaxLanes; ++lanes) {
        auto results = BcryptCompute(inputs, lanes);
        ASSERT_EQ(results.size(), all.size());
        for (std::size_t i = 0; i < all.size(); ++i) {
            ASSERT_TRUE(results[i].ok()) << i;
            EXPECT_EQ(results[i].value(), all[i].hash) << "lanes " << lanes << ", vector " << i;
        }
    }
}

// Every length 0..72, random bytes 1..255 (8-bit included), each variant, against libxcrypt,
// in batches of up to four lanes of different passwords and salts.
TEST(BcryptEngine, MatchesLibxcryptForEveryLengthAndVariant) {
    std::mt19937 random(20261202);
    std::uniform_int_distribution<int> byte(1, 255);
    for (const char* variant : {"$2a$", "$2b$", "$2y$"}) {
        std::vector<std::string> passwords, settings;
        for (std::size_t length = 0; length <= 72; ++length) {
            std::string password;
            for (std::size_t i = 0; i < length; ++i) password += static_cast<char>(byte(random));
            std::string setting = BcryptNewSetting(4).value();
            setting.replace(0, 4, variant);
            passwords.push_back(password);
            settings.push_back(setting);
        }
        std::vector<BcryptInput> inputs;
        for (std::size_t i = 0; i < passwords.size(); ++i)
            inputs.push_back({passwords[i], settings[i]});
        auto results = BcryptCompute(inputs, static_cast<int>(1 + passwords.size() % 4));
        for (std::size_t i = 0; i < inputs.size(); ++i) {
            ASSERT_TRUE(results[i].ok());
            EXPECT_EQ(results[i].value(), LibxcryptBcrypt(passwords[i], settings[i]).value())
                << variant << " length " << i;
        }
    }
}

// The 0xff bytes that trigger $2a$'s deviation, at random positions: the case where a mistake
// would show for $2a$ alone.
TEST(BcryptEngine, MatchesLibxcryptOnSignExtensionCorners) {
    std::mt19937 random(7);
    const char alphabet[] = {'\xff', '\x80', '\xa3', 'a', '3', '\x7f'};
    std::vector<std::string> passwords, settings;
    for (int n = 0; n < 48; ++n) {
        std::string password;
        const std::size_t length = 1 + random() % 72;
        for (std::size_t i = 0; i < length; ++i) password += alphabet[random() % 6];
        std::string setting = BcryptNewSetting(4).value();
        setting[2] = "aby"[n % 3];
        passwords.push_back(password);
        settings.push_back(setting);
    }
    std::vector<BcryptInput> inputs;
    for (std::size_t i = 0; i < passwords.size(); ++i)
        inputs.push_back({passwords[i], settings[i]});
    auto results = BcryptCompute(inputs, 3);
    for (std::size_t i = 0; i < inputs.size(); ++i)
        EXPECT_EQ(results[i].value(), LibxcryptBcrypt(passwords[i], settings[i]).value()) << i;
}

TEST(BcryptEngine, NormalizesTheLastSaltCharacterAsLibxcryptDoes) {
    // 'f' (33) carries low bits the 16-byte salt has no room for; the output keeps its top
    // two bits: 'e' (32).
    const std::string setting = "$2b$04$abcdefghijklmnopqrstuf";
    const std::string hash = Compute("x", setting);
    EXPECT_EQ(hash, LibxcryptBcrypt("x", setting).value());
    EXPECT_EQ(hash[28], 'e');
}

TEST(BcryptEngine, RefusesInvalidInputPerInput) {
    const std::string good = BcryptNewSetting(4).value();
    const std::string long_password(73, 'a');
    const std::string with_nul("a\0b", 3);
    const std::vector<BcryptInput> inputs = {
        {"fine", good},
        {long_password, good},
        {with_nul, good},
        {"x", "$2x$05$CCCCCCCCCCCCCCCCCCCCC."},  // the buggy variant: not ours
        {"x", "$2b$03$CCCCCCCCCCCCCCCCCCCCC."},  // cost below 4
        {"x", "$2b$32$CCCCCCCCCCCCCCCCCCCCC."},  // above 31
        {"x", "$2b$05$CCCCCCCCCCCCCCCCCCCC!."},  // outside the alphabet
        {"x", "$2b$05$CCCCCCCCCCCCCCCCCCCCC"},   // one salt character short
        {"x", "$1$abcdefgh$"},
    };
    auto results = BcryptCompute(inputs, 4);
    ASSERT_TRUE(results[0].ok());
    EXPECT_EQ(results[0].value(), LibxcryptBcrypt("fine", good).value());
    EXPECT_EQ(results[1].error().code, "invalid_password");
    EXPECT_EQ(results[2].error().code, "invalid_password");
    for (std::size_t i = 3; i < inputs.size(); ++i) {
        ASSERT_FALSE(results[i].ok()) << i;
        EXPECT_EQ(results[i].error().code, "invalid_hash") << i;
    }
    EXPECT_EQ(BcryptSettingCost("$2y$31$CCCCCCCCCCCCCCCCCCCCC.").value(), 31);
    EXPECT_FALSE(BcryptSettingCost("$2y$3").ok());
}

TEST(BcryptEngine, TheServiceDefaultCostMatchesItsVector) {
    // jBCrypt's cost-12 vector: the default cost of the service, computed in full.
    EXPECT_EQ(Compute("", "$2a$12$k42ZFHFWqBp3vWli.nIn8u"),
              "$2a$12$k42ZFHFWqBp3vWli.nIn8uYyIkbvYRvodzbfbK18SSsY.CsIQPlxO");
}

}  // namespace
}  // namespace hashd
