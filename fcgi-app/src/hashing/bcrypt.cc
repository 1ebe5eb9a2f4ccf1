#include "hashing/bcrypt.h"

#include <crypt.h>
#include <openssl/crypto.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "core/secret.h"

namespace hashd {
namespace {

constexpr std::size_t kSettingLength = 29;
constexpr std::size_t kHashLength = 60;

bool IsBcryptBase64(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '/';
}

Status CheckPassword(std::string_view password) {
    if (password.size() > kBcryptMaxPasswordBytes || password.find('\0') != std::string_view::npos)
        return Error{ErrorKind::kInvalid, "invalid_password",
                     "bcrypt cannot hash this password exactly (over 72 bytes or a NUL)."};
    return Ok{};
}

}  // namespace

// crypt_rn into a per-call scratch area; the result is copied out before the area is freed.
Result<std::string> LibxcryptBcrypt(std::string_view password, std::string_view setting_text) {
    if (auto status = CheckPassword(password); !status.ok()) return status.error();
    const std::string setting(setting_text);  // crypt_rn takes C strings
    auto scratch = std::make_unique<crypt_data>();
    Secret phrase(password);  // crypt_rn takes a C string
    const char* out = crypt_rn(phrase.view().data(), setting.c_str(), scratch.get(),
                               static_cast<int>(sizeof(crypt_data)));
    std::string result = out != nullptr ? std::string(out) : std::string();
    Wipe(scratch.get(), sizeof(crypt_data));  // it held the password
    if (out == nullptr || result.size() != kHashLength)
        return Error{ErrorKind::kInternal, "internal_error", "The hash could not be computed."};
    return result;
}

Result<std::string> BcryptNewSetting(int cost) {
    if (cost < 4 || cost > 31)
        return Error{ErrorKind::kInvalid, "invalid_cost",
                     "The bcrypt cost must be between 4 and 31."};
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    if (crypt_gensalt_rn("$2b$", static_cast<unsigned long>(cost), nullptr, 0, setting,
                         sizeof(setting)) == nullptr ||
        std::strlen(setting) != kSettingLength)
        return Error{ErrorKind::kInternal, "internal_error", "A salt could not be generated."};
    return std::string(setting);
}

Result<BcryptHash> BcryptHashPassword(std::string_view password, int cost) {
    if (auto status = CheckPassword(password); !status.ok()) return status.error();
    auto setting = BcryptNewSetting(cost);
    if (!setting.ok()) return setting.error();
    auto hash = LibxcryptBcrypt(password, setting.value());
    if (!hash.ok()) return hash.error();
    return BcryptHash{std::move(setting).value(), std::move(hash).value(), cost};
}

Result<BcryptParts> ParseBcrypt(std::string_view hash) {
    const Error invalid{ErrorKind::kInvalid, "invalid_hash",
                        "The hash must be a bcrypt string ($2b$NN$ + 53 characters) or its hex."};
    if (hash.size() != kHashLength || hash[0] != '$' || hash[1] != '2' || hash[3] != '$' ||
        hash[6] != '$')
        return invalid;
    if (hash[2] != 'a' && hash[2] != 'b' && hash[2] != 'y') return invalid;
    if (hash[4] < '0' || hash[4] > '9' || hash[5] < '0' || hash[5] > '9') return invalid;
    for (std::size_t i = 7; i < hash.size(); ++i)
        if (!IsBcryptBase64(hash[i])) return invalid;
    int cost = (hash[4] - '0') * 10 + (hash[5] - '0');
    if (cost < 4 || cost > 31) return invalid;
    return BcryptParts{std::string(hash.substr(1, 2)), cost};
}

Result<bool> BcryptVerify(std::string_view password, std::string_view hash) {
    if (auto status = CheckPassword(password); !status.ok()) return status.error();
    if (auto parts = ParseBcrypt(hash); !parts.ok()) return parts.error();
    auto computed = LibxcryptBcrypt(password, hash);
    if (!computed.ok()) return computed.error();
    // Both strings are 60 bytes: CRYPTO_memcmp's time does not depend on where they differ.
    return CRYPTO_memcmp(computed.value().data(), hash.data(), kHashLength) == 0;
}

}  // namespace hashd
