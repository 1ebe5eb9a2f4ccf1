// The interleaved bcrypt engine: see bcrypt_engine.h for what it promises and
// docs/bcrypt-engine.md for the design and its measurements.
//
// The algorithm (Provos and Mazieres, "A Future-Adaptable Password Scheme", 1999), with the
// details that make the strings what OpenBSD and libxcrypt produce:
//
//   state  = Blowfish's initial state (pi)
//   ExpandKey(state, salt, key)        P ^= key words; then encrypt a running block, XORed with
//                                      the salt's words in turn, into P[0..17] and S[0..1023]
//   repeat 2^cost times:
//       ExpandKey(state, 0, key)       P ^= key words; encrypt the running block (no salt)
//       ExpandKey(state, 0, salt)      P ^= salt words (cyclically); encrypt likewise
//   ctext  = "OrpheanBeholderScryDoubt", each 64-bit block encrypted 64 times
//   result = "$2b$NN$" + salt (22 chars) + the first 23 bytes of ctext (31 chars)
//
// The key is the password's bytes and its terminating NUL, repeated cyclically to fill the 18
// words of P (72 bytes: a 72-byte password fills them with no NUL). Words are big-endian. The
// base-64 alphabet is bcrypt's own ("./A-Za-z0-9"), and the 22nd salt character carries only
// two bits: the output re-encodes it from them, as libxcrypt does.
//
// $2a$, $2b$ and $2y$ differ only in one corner here. Old crypt_blowfish sign-extended 8-bit
// password bytes ($2x$ now names that bug); for $2a$, libxcrypt deviates from the correct
// algorithm (flips bit 16 of the first initial P word) for the passwords whose correct key
// words equal their buggy ones although a sign extension happened (some passwords with 0xff
// bytes), so that no $2a$ hash collides with a buggy one. We reproduce that deviation.
// OpenBSD's old $2a$ wrapped its key length at 256 bytes; passwords here are at most 72, so
// that bug cannot arise.
//
// Interleaving. Each Blowfish round of one hash is a chain: four loads whose addresses come
// from the previous round's result. Lanes<K> keeps K independent states and advances all K
// blocks one round at a time, so that the core has 4K independent loads in flight instead of
// four. K is a template parameter so that every per-lane loop unrolls and each lane's table
// base is a constant offset from one pointer (the lanes are one array).

#include "hashing/bcrypt_engine.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>

#include "hashing/blowfish_init.h"

namespace hashd {
namespace {

using Word = std::uint32_t;

constexpr std::size_t kSettingLength = 29;  // "$2b$12$" + 22
constexpr std::size_t kHashLength = 60;
constexpr std::size_t kMaxPassword = 72;
constexpr char kAlphabet[] = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
// "OrpheanBeholderScryDoubt" as big-endian words.
constexpr Word kMagic[6] = {0x4f727068, 0x65616e42, 0x65686f6c, 0x64657253, 0x63727944, 0x6f756274};

int Base64Value(char ch) {
    if (ch == '.') return 0;
    if (ch == '/') return 1;
    if (ch >= 'A' && ch <= 'Z') return ch - 'A' + 2;
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 28;
    if (ch >= '0' && ch <= '9') return ch - '0' + 54;
    return -1;
}

// Decodes the 22 salt characters into 16 bytes; false on a character outside the alphabet.
bool DecodeSalt(std::string_view text, unsigned char (&out)[16]) {
    int values[22];
    for (int i = 0; i < 22; ++i)
        if ((values[i] = Base64Value(text[static_cast<std::size_t>(i)])) < 0) return false;
    std::size_t o = 0;
    for (int i = 0; o < 16; i += 4) {
        out[o++] = static_cast<unsigned char>((values[i] << 2) | (values[i + 1] >> 4));
        if (o == 16) break;
        out[o++] = static_cast<unsigned char>(((values[i + 1] & 0x0f) << 4) | (values[i + 2] >> 2));
        out[o++] = static_cast<unsigned char>(((values[i + 2] & 0x03) << 6) | values[i + 3]);
    }
    return true;
}

// bcrypt's base 64 of `size` bytes, 3 bytes to 4 characters, a short last group shortened.
void Encode(const unsigned char* in, std::size_t size, std::string& out) {
    for (std::size_t i = 0; i < size;) {
        unsigned c1 = in[i++];
        out += kAlphabet[c1 >> 2];
        c1 = (c1 & 0x03) << 4;
        if (i >= size) {
            out += kAlphabet[c1];
            break;
        }
        unsigned c2 = in[i++];
        out += kAlphabet[c1 | (c2 >> 4)];
        c1 = (c2 & 0x0f) << 2;
        if (i >= size) {
            out += kAlphabet[c1];
            break;
        }
        c2 = in[i++];
        out += kAlphabet[c1 | (c2 >> 6)];
        out += kAlphabet[c2 & 0x3f];
    }
}

Word BigEndian(const unsigned char* bytes) {
    return (Word{bytes[0]} << 24) | (Word{bytes[1]} << 16) | (Word{bytes[2]} << 8) | bytes[3];
}

// One hash's whole state. 64-byte aligned so that lanes never share a cache line.
struct alignas(64) Lane {
    Word s[4][256];
    Word p[18];
    Word key[18];  // the expanded key XORed into P at each round
    Word salt[4];
};

// The key words of `password` for `variant` into lane.key, and P's initial value (pi XOR key,
// with $2a$'s deviation) into lane.p.
void SetKey(std::string_view password, char variant, Lane& lane) {
    std::size_t at = 0;  // index into password + its NUL, cyclically
    Word sign = 0, diff = 0;
    for (int i = 0; i < 18; ++i) {
        Word correct = 0, buggy = 0;
        for (int j = 0; j < 4; ++j) {
            const unsigned char byte =
                at < password.size() ? static_cast<unsigned char>(password[at]) : 0;
            correct = (correct << 8) | byte;
            // The sign-extended form old crypt_blowfish computed: only to detect $2a$'s case.
            buggy = (buggy << 8) |
                    static_cast<Word>(static_cast<std::int32_t>(static_cast<signed char>(byte)));
            if (j != 0) sign |= buggy & 0x80;
            at = at < password.size() ? at + 1 : 0;
        }
        diff |= correct ^ buggy;
        lane.key[i] = correct;
        lane.p[i] = kBlowfishInit.p[i] ^ correct;
    }
    if (variant == 'a') {
        // Bit 16 set in `sign` iff a non-benign sign extension happened yet every correct word
        // equals its buggy one: then libxcrypt flips bit 16 of the initial P[0] (not the key).
        diff |= diff >> 16;
        diff &= 0xffff;
        diff += 0xffff;  // bit 16 set iff diff was non-zero
        sign <<= 9;
        sign &= ~diff & 0x10000;
        lane.p[0] ^= sign;
    }
}

#define HASHD_UNROLL _Pragma("GCC unroll 16")

template <int K>
struct Lanes {
    Lane* lane;  // K lanes, contiguous

    // Blowfish's F, on lane k's S-boxes.
    [[gnu::always_inline]] inline Word F(int k, Word x) const {
        const Lane& l = lane[k];
        return ((l.s[0][x >> 24] + l.s[1][(x >> 16) & 0xff]) ^ l.s[2][(x >> 8) & 0xff]) +
               l.s[3][x & 0xff];
    }

    // Encrypts the K blocks (l[k], r[k]) in place, round by round across the lanes.
    [[gnu::always_inline]] inline void Encrypt(Word (&l)[K], Word (&r)[K]) const {
        HASHD_UNROLL
        for (int k = 0; k < K; ++k) l[k] ^= lane[k].p[0];
        HASHD_UNROLL
        for (int round = 1; round < 17; round += 2) {
            HASHD_UNROLL
            for (int k = 0; k < K; ++k) r[k] ^= F(k, l[k]) ^ lane[k].p[round];
            HASHD_UNROLL
            for (int k = 0; k < K; ++k) l[k] ^= F(k, r[k]) ^ lane[k].p[round + 1];
        }
        HASHD_UNROLL
        for (int k = 0; k < K; ++k) {
            const Word out = r[k] ^ lane[k].p[17];
            r[k] = l[k];
            l[k] = out;
        }
    }

    // Re-encrypts P and the S-boxes in place from a zero block, chaining: the body of each
    // ExpandKey once the key or salt has been XORed into P. With `salted`, each block is first
    // XORed with the salt's next two words (the first ExpandKey).
    template <bool salted>
    void Rekey() const {
        Word l[K] = {}, r[K] = {};
        int salt_at = 0;
        for (int i = 0; i < 18; i += 2) {
            if constexpr (salted) {
                HASHD_UNROLL
                for (int k = 0; k < K; ++k) {
                    l[k] ^= lane[k].salt[salt_at];
                    r[k] ^= lane[k].salt[salt_at + 1];
                }
                salt_at ^= 2;
            }
            Encrypt(l, r);
            HASHD_UNROLL
            for (int k = 0; k < K; ++k) {
                lane[k].p[i] = l[k];
                lane[k].p[i + 1] = r[k];
            }
        }
        for (int box = 0; box < 4; ++box) {
            for (int i = 0; i < 256; i += 2) {
                if constexpr (salted) {
                    HASHD_UNROLL
                    for (int k = 0; k < K; ++k) {
                        l[k] ^= lane[k].salt[salt_at];
                        r[k] ^= lane[k].salt[salt_at + 1];
                    }
                    salt_at ^= 2;
                }
                Encrypt(l, r);
                HASHD_UNROLL
                for (int k = 0; k < K; ++k) {
                    lane[k].s[box][i] = l[k];
                    lane[k].s[box][i + 1] = r[k];
                }
            }
        }
    }

    // Everything after SetKey and the salt: the 2^cost rounds and the magic's encryption into
    // out[k][0..5].
    void Run(std::uint64_t rounds, Word (*out)[6]) const {
        HASHD_UNROLL
        for (int k = 0; k < K; ++k) std::memcpy(lane[k].s, kBlowfishInit.s, sizeof(lane[k].s));
        Rekey<true>();
        for (std::uint64_t n = 0; n < rounds; ++n) {
            HASHD_UNROLL
            for (int k = 0; k < K; ++k)
                for (int i = 0; i < 18; ++i) lane[k].p[i] ^= lane[k].key[i];
            Rekey<false>();
            HASHD_UNROLL
            for (int k = 0; k < K; ++k)
                for (int i = 0; i < 18; ++i) lane[k].p[i] ^= lane[k].salt[i & 3];
            Rekey<false>();
        }
        for (int i = 0; i < 6; i += 2) {
            Word l[K], r[K];
            HASHD_UNROLL
            for (int k = 0; k < K; ++k) {
                l[k] = kMagic[i];
                r[k] = kMagic[i + 1];
            }
            for (int n = 0; n < 64; ++n) Encrypt(l, r);
            HASHD_UNROLL
            for (int k = 0; k < K; ++k) {
                out[k][i] = l[k];
                out[k][i + 1] = r[k];
            }
        }
    }
};

// A validated input: what a lane needs.
struct Parsed {
    char variant = 0;
    int cost = 0;
    unsigned char salt[16] = {};
};

const Error& InvalidHash() {
    static const Error error{
        ErrorKind::kInvalid, "invalid_hash",
        "The hash must be a bcrypt string ($2b$NN$ + 53 characters) or its hex."};
    return error;
}

Result<Parsed> ParseSetting(std::string_view setting) {
    Parsed parsed;
    if (setting.size() < kSettingLength || setting[0] != '$' || setting[1] != '2' ||
        (setting[2] != 'a' && setting[2] != 'b' && setting[2] != 'y') || setting[3] != '$' ||
        setting[4] < '0' || setting[4] > '9' || setting[5] < '0' || setting[5] > '9' ||
        setting[6] != '$')
        return InvalidHash();
    parsed.variant = setting[2];
    parsed.cost = (setting[4] - '0') * 10 + (setting[5] - '0');
    if (parsed.cost < 4 || parsed.cost > 31) return InvalidHash();
    if (!DecodeSalt(setting.substr(7, 22), parsed.salt)) return InvalidHash();
    return parsed;
}

Status CheckPassword(std::string_view password) {
    if (password.size() > kMaxPassword || password.find('\0') != std::string_view::npos)
        return Error{ErrorKind::kInvalid, "invalid_password",
                     "bcrypt cannot hash this password exactly (over 72 bytes or a NUL)."};
    return Ok{};
}

// Wipes and frees a lane buffer: it holds the passwords' key words and every derived state.
struct LaneBuffer {
    explicit LaneBuffer(int count)
        : lanes(static_cast<std::size_t>(count)), lane(std::make_unique<Lane[]>(lanes)) {}
    ~LaneBuffer() { OPENSSL_cleanse(lane.get(), sizeof(Lane) * lanes); }
    LaneBuffer(const LaneBuffer&) = delete;
    LaneBuffer& operator=(const LaneBuffer&) = delete;
    std::size_t lanes;
    std::unique_ptr<Lane[]> lane;
};

// Computes `group` (indexes into inputs, all valid and of one cost, 1..kBcryptMaxLanes).
void ComputeGroup(std::span<const BcryptInput> inputs, const std::vector<Parsed>& parsed,
                  std::span<const std::size_t> group, std::vector<Result<std::string>>& results) {
    const int k = static_cast<int>(group.size());
    LaneBuffer buffer(k);
    Word out[kBcryptMaxLanes][6] = {};
    for (int i = 0; i < k; ++i) {
        const std::size_t at = group[static_cast<std::size_t>(i)];
        Lane& lane = buffer.lane[static_cast<std::size_t>(i)];
        SetKey(inputs[at].password, parsed[at].variant, lane);
        for (int w = 0; w < 4; ++w) lane.salt[w] = BigEndian(parsed[at].salt + 4 * w);
    }
    const std::uint64_t rounds = std::uint64_t{1} << parsed[group[0]].cost;
    switch (k) {
        case 1:
            Lanes<1>{buffer.lane.get()}.Run(rounds, out);
            break;
        case 2:
            Lanes<2>{buffer.lane.get()}.Run(rounds, out);
            break;
        case 3:
            Lanes<3>{buffer.lane.get()}.Run(rounds, out);
            break;
        default:
            Lanes<4>{buffer.lane.get()}.Run(rounds, out);
            break;
    }
    for (int i = 0; i < k; ++i) {
        const std::size_t at = group[static_cast<std::size_t>(i)];
        unsigned char bytes[24];
        for (int w = 0; w < 6; ++w) {
            const Word word = out[i][w];
            bytes[4 * w] = static_cast<unsigned char>(word >> 24);
            bytes[4 * w + 1] = static_cast<unsigned char>(word >> 16);
            bytes[4 * w + 2] = static_cast<unsigned char>(word >> 8);
            bytes[4 * w + 3] = static_cast<unsigned char>(word);
        }
        std::string hash(inputs[at].setting.substr(0, kSettingLength - 1));
        hash.reserve(kHashLength);
        // The salt's last character re-encoded from its two significant bits.
        hash += kAlphabet[Base64Value(inputs[at].setting[kSettingLength - 1]) & 0x30];
        Encode(bytes, 23, hash);
        results[at] = std::move(hash);
    }
    OPENSSL_cleanse(out, sizeof(out));
}

}  // namespace

Result<int> BcryptSettingCost(std::string_view setting) {
    auto parsed = ParseSetting(setting);
    if (!parsed.ok()) return parsed.error();
    return parsed.value().cost;
}

std::vector<Result<std::string>> BcryptCompute(std::span<const BcryptInput> inputs, int lanes) {
    lanes = std::clamp(lanes, 1, kBcryptMaxLanes);
    std::vector<Result<std::string>> results(inputs.size(), Result<std::string>(InvalidHash()));
    std::vector<Parsed> parsed(inputs.size());
    std::map<int, std::vector<std::size_t>> by_cost;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        if (auto status = CheckPassword(inputs[i].password); !status.ok()) {
            results[i] = status.error();
            continue;
        }
        auto setting = ParseSetting(inputs[i].setting);
        if (!setting.ok()) continue;  // results[i] already says invalid_hash
        parsed[i] = setting.value();
        by_cost[parsed[i].cost].push_back(i);
    }
    for (const auto& [cost, indexes] : by_cost) {
        for (std::size_t start = 0; start < indexes.size();
             start += static_cast<std::size_t>(lanes)) {
            const std::size_t n = std::min(indexes.size() - start, static_cast<std::size_t>(lanes));
            ComputeGroup(inputs, parsed, std::span(indexes).subspan(start, n), results);
        }
    }
    OPENSSL_cleanse(parsed.data(), parsed.size() * sizeof(Parsed));
    return results;
}

}  // namespace hashd
