#pragma once
// Errors are values at every boundary: a function that can fail returns Result<T>, which holds
// either the value or an ApiError that already knows the HTTP status and the stable error code
// a client can branch on. Nothing throws across a module boundary.

#include <string>
#include <utility>
#include <variant>

namespace hashd {

struct ApiError {
    int status = 500;
    std::string code;             // stable machine-readable code, e.g. "password_too_long"
    std::string message;          // a sentence a person can act on; never contains a secret
    int retry_after_seconds = 0;  // > 0 adds Retry-After (503)
    // The cause as the operator needs it (e.g. "Connection refused"), for the log only: never
    // sent to a client, and never holding a secret or a message.
    std::string detail{};
    // > 0 (an overload 503): the delay in milliseconds, sent as Retry-After-Ms, and rounded up
    // to whole seconds in the standard Retry-After when that is not already longer.
    int retry_after_ms = 0;
};

template <typename T>
class [[nodiscard]] Result {
  public:
    Result(T value) : state_(std::move(value)) {}
    Result(ApiError error) : state_(std::move(error)) {}

    bool ok() const { return std::holds_alternative<T>(state_); }
    const T& value() const& { return std::get<T>(state_); }
    T& value() & { return std::get<T>(state_); }
    T&& value() && { return std::get<T>(std::move(state_)); }
    const ApiError& error() const { return std::get<ApiError>(state_); }

  private:
    std::variant<T, ApiError> state_;
};

// For operations that return nothing but may fail.
struct Ok {};
using Status = Result<Ok>;

}  // namespace hashd
