#include "hashing/bcrypt_self_test.h"

#include "hashing/bcrypt.h"

namespace hashd {
namespace {

struct Case {
    std::string password;
    std::string setting;
};

std::vector<Case> Cases() {
    std::vector<Case> cases;
    const std::string fixed_salt = "abcdefghijklmnopqrstuu";
    const std::string passwords[] = {
        "U*U",
        "\xff\xff\xa3",  // 8-bit; $2a$ deviates here
        "\xff\xa3"
        "34"
        "\xff\xff\xff\xa3"
        "345",                     // the other $2a$ corner
        "p\xc3\xa4ssw\xc3\xb6rd",  // UTF-8, as clients send
        std::string(72, '\xaa'),   // 72 bytes: no NUL in the key
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        "x",
    };
    for (const char* variant : {"$2a$", "$2b$", "$2y$"}) {
        for (const std::string& password : passwords)
            cases.push_back({password, std::string(variant) + "04$" + fixed_salt});
        // A fresh salt too, at cost 5: what the service will really compute.
        auto fresh = BcryptNewSetting(5);
        if (fresh.ok()) {
            std::string setting = fresh.value();
            setting.replace(0, 4, variant);
            cases.push_back({"correct horse battery staple", setting});
        }
    }
    return cases;
}

std::string Describe(const Case& c) {
    return c.setting.substr(0, 7) + " with a " + std::to_string(c.password.size()) +
           "-byte password";
}

}  // namespace

Status BcryptSelfTest(int lanes, const BcryptBatchFunction& engine) {
    const std::vector<Case> cases = Cases();
    std::vector<BcryptInput> inputs;
    for (const Case& c : cases) inputs.push_back({c.password, c.setting});
    for (const int run_lanes : {lanes, 1}) {
        const auto got = engine(inputs, run_lanes);
        for (std::size_t i = 0; i < cases.size(); ++i) {
            auto want = LibxcryptBcrypt(cases[i].password, cases[i].setting);
            if (!want.ok())
                return Error{ErrorKind::kInternal, "bcrypt_self_test_failed",
                             "libxcrypt could not compute " + Describe(cases[i])};
            if (i >= got.size() || !got[i].ok() || got[i].value() != want.value())
                return Error{ErrorKind::kInternal, "bcrypt_self_test_failed",
                             "the interleaved bcrypt engine (" + std::to_string(run_lanes) +
                                 " lanes) differs from libxcrypt for " + Describe(cases[i])};
        }
    }
    return Ok{};
}

}  // namespace hashd
