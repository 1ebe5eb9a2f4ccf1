#pragma once
// Copies of a password are overwritten before their memory is freed, so that a later heap
// bug, a core dump or a swapped-out page cannot hand an old password over. bcrypt's scratch
// area was the first such copy; the others are the request's body and path, the parsed JSON
// values and decoded form fields, and the password string the handlers pass around.
//
// What this cannot reach: buffers inside libraries that do not offer a hook (jsoncpp's
// temporary decoding string, libfcgi's record buffer, the kernel's socket buffers). Those
// are freed or reused within the same request; nothing here claims to cover them.

#include <string>
#include <string_view>

namespace hashd {

// Overwrites every byte `text` owns (its whole capacity) and empties it. The memory is
// cleared with OPENSSL_cleanse, which the compiler may not optimize away.
void Wipe(std::string& text);

// Overwrites `size` bytes at `data`.
void Wipe(void* data, std::size_t size);

// A string that is wiped when it is destroyed or moved from. Not copyable, so that every
// copy is deliberate (view() hands out a view, not a copy).
class Secret {
  public:
    Secret() = default;
    explicit Secret(std::string_view value) : value_(value) {}
    Secret(Secret&& other) noexcept : value_(std::move(other.value_)) { Wipe(other.value_); }
    Secret& operator=(Secret&& other) noexcept {
        if (this != &other) {
            Wipe(value_);
            value_ = std::move(other.value_);
            Wipe(other.value_);
        }
        return *this;
    }
    Secret(const Secret&) = delete;
    Secret& operator=(const Secret&) = delete;
    ~Secret() { Wipe(value_); }

    std::string_view view() const { return value_; }
    std::size_t size() const { return value_.size(); }

  private:
    std::string value_;
};

}  // namespace hashd
