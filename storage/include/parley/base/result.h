// Result<T> and Error: parley's error vocabulary, shaped like std::expected (GCC 12 ships
// <expected> only under C++23). Retry and policy decisions read Error::code, never the text.
// Value types; no thread-safety concerns beyond those of T.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace parley {

enum class ErrorCode {
  invalid_argument,
  not_found,
  already_exists,
  permission_denied,
  unauthenticated,
  resource_exhausted,
  unavailable,
  deadline_exceeded,
  cancelled,
  billing,
  data_loss,
  internal,
};

std::string_view to_string(ErrorCode code) noexcept;

struct Error {
  ErrorCode code = ErrorCode::internal;
  std::string message;

  // "code: message", for logs and one-line CLI errors.
  [[nodiscard]] std::string describe() const;
};

// Wraps an Error so that `return fail(...)` converts to any Result<T>.
struct Unexpected {
  Error error;
};

[[nodiscard]] inline Unexpected fail(ErrorCode code, std::string message) {
  return Unexpected{Error{code, std::move(message)}};
}
[[nodiscard]] inline Unexpected fail(Error error) { return Unexpected{std::move(error)}; }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Unexpected u) : v_(std::in_place_index<1>, std::move(u.error)) {}  // NOLINT

  [[nodiscard]] bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  [[nodiscard]] const Error& error() const& {
    assert(!ok());
    return std::get<1>(v_);
  }
  [[nodiscard]] Error&& error() && {
    assert(!ok());
    return std::get<1>(std::move(v_));
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Unexpected u) : error_(std::move(u.error)), ok_(false) {}  // NOLINT: implicit by design

  [[nodiscard]] bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  [[nodiscard]] const Error& error() const& {
    assert(!ok_);
    return error_;
  }
  [[nodiscard]] Error&& error() && {
    assert(!ok_);
    return std::move(error_);
  }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace parley

// Propagates a failed Result from the enclosing function.
#define PARLEY_TRY(expr)                                       \
  do {                                                         \
    if (auto parley_try_r_ = (expr); !parley_try_r_.ok()) {    \
      return ::parley::fail(std::move(parley_try_r_).error()); \
    }                                                          \
  } while (0)
