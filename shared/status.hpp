// Status and Result<T>: Beat's error style on daemon and IPC paths and in the
// client library (C++20 has no std::expected). A Status carries a code and a
// message that names what was wrong and its value.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace beat {

enum class ErrorCode : int {
  kOk = 0,
  kInvalidArgument = 1,  // caller passed a bad value
  kWouldBlock = 2,       // non-blocking call found no room / nothing ready
  kTimedOut = 3,
  kShuttingDown = 4,       // daemon draining or gone
  kProtocol = 5,           // peer spoke something we do not understand
  kIo = 6,                 // a syscall failed; message carries errno text
  kNotFound = 7,           // unknown kernel name, ...
  kResourceExhausted = 8,  // arena full, too many clients, ...
  kPermissionDenied = 9,
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok() { return {}; }

  bool is_ok() const noexcept { return code_ == ErrorCode::kOk; }
  explicit operator bool() const noexcept { return is_ok(); }
  ErrorCode code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {
    assert(!std::get<Status>(v_).is_ok());
  }  // NOLINT

  bool is_ok() const noexcept { return std::holds_alternative<T>(v_); }
  explicit operator bool() const noexcept { return is_ok(); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &std::get<T>(v_); }
  const T* operator->() const { return &std::get<T>(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  // REQUIRES: !is_ok()
  const Status& status() const { return std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace beat
