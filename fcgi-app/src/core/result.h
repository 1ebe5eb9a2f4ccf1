#pragma once
// Errors are values at every boundary: a function that can fail returns Result<T>, which holds
// either the value or an Error: what kind of failure it is, as the layer that failed knows it,
// and the stable error code a client can branch on. No layer below the API knows HTTP: the
// API maps a kind to its status once (http/errors.cc). Nothing throws across a module
// boundary.

#include <string>
#include <utility>
#include <variant>

namespace hashd {

// http/errors.cc maps each kind to its HTTP status, in this order: append new kinds there too.
enum class ErrorKind {
    kInvalid,           // the input is malformed or out of range
    kNotFound,          // nothing is stored or routed under that name
    kMethodNotAllowed,  // the name is known, but not with that method
    kGone,              // the operation exists but is switched off here
    kTooLarge,          // the input is over its size limit
    kUnsupportedType,   // the input comes in a format that is not accepted
    kInternal,          // a fault of this process or its set-up: a setting, a file, a library
    kUnavailable,       // a dependency cannot answer now, or the service takes no work for now
                        // (overloaded, draining): the same request may be retried later
    kFull,              // the store has no room for writes; reads keep working
    kLimited,           // this client has used its share for now; it may retry later
    kClientGone,        // the client closed the connection before the work was done (logged only)
    kUnauthenticated,   // the request carries no valid credential for a gated route
    kForbidden,         // the client is known but may not use this route
};

struct Error {
    ErrorKind kind = ErrorKind::kInternal;
    std::string code;             // stable machine-readable code, e.g. "password_too_long"
    std::string message;          // a sentence a person can act on; never contains a secret
    int retry_after_seconds = 0;  // > 0 adds Retry-After (kUnavailable)
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
    Result(Error error) : state_(std::move(error)) {}

    bool ok() const { return std::holds_alternative<T>(state_); }
    const T& value() const& { return std::get<T>(state_); }
    T& value() & { return std::get<T>(state_); }
    T&& value() && { return std::get<T>(std::move(state_)); }
    const Error& error() const { return std::get<Error>(state_); }

  private:
    std::variant<T, Error> state_;
};

// For operations that return nothing but may fail.
struct Ok {};
using Status = Result<Ok>;

}  // namespace hashd
