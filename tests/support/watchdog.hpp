// Test support: a hard time limit for concurrent tests, and stress sizes that
// shrink under ThreadSanitizer.
//
// ScopedWatchdog arms alarm(2) for the lifetime of a scope. If the scope is
// still running when it fires, the SIGALRM handler writes "watchdog: <what>
// exceeded <n> s" to stderr and _exit()s with kWatchdogExitCode, so a hung
// test fails instead of hanging ctest. It uses no thread, so a test may
// fork() while one is armed; alarms are not inherited by fork() children,
// which arm their own.
//
// Thread-safety: one ScopedWatchdog per process at a time (alarm(2) is
// per-process); construct and destroy it on the test's main thread.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace beat::test {

inline constexpr int kWatchdogExitCode = 86;

namespace detail {
inline char g_watchdog_message[256];
inline std::size_t g_watchdog_message_length = 0;

inline void on_watchdog_alarm(int) {
  // Async-signal-safe: write(2) and _exit(2) only.
  const ssize_t ignored = ::write(STDERR_FILENO, g_watchdog_message, g_watchdog_message_length);
  (void)ignored;
  ::_exit(kWatchdogExitCode);
}
}  // namespace detail

class ScopedWatchdog {
 public:
  // `what` names the guarded scope in the failure message (truncated to fit).
  ScopedWatchdog(std::string_view what, unsigned seconds) noexcept {
    std::string_view prefix = "watchdog: ";
    char* out = detail::g_watchdog_message;
    const std::size_t cap = sizeof(detail::g_watchdog_message) - 32;
    std::size_t n = 0;
    for (char c : prefix) out[n++] = c;
    for (std::size_t i = 0; i < what.size() && n < cap; ++i) out[n++] = what[i];
    char digits[16];
    std::size_t d = 0;
    unsigned v = seconds;
    do {
      digits[d++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    for (char c : std::string_view(" exceeded ")) out[n++] = c;
    while (d > 0) out[n++] = digits[--d];
    for (char c : std::string_view(" s\n")) out[n++] = c;
    detail::g_watchdog_message_length = n;

    struct sigaction sa {};
    sa.sa_handler = detail::on_watchdog_alarm;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGALRM, &sa, &previous_);
    ::alarm(seconds);
  }
  ~ScopedWatchdog() {
    ::alarm(0);
    ::sigaction(SIGALRM, &previous_, nullptr);
  }
  ScopedWatchdog(const ScopedWatchdog&) = delete;
  ScopedWatchdog& operator=(const ScopedWatchdog&) = delete;

 private:
  struct sigaction previous_ {};
};

// True when compiled with -fsanitize=thread (GCC defines __SANITIZE_THREAD__,
// clang reports it through __has_feature).
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kUnderThreadSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kUnderThreadSanitizer = true;
#else
inline constexpr bool kUnderThreadSanitizer = false;
#endif
#else
inline constexpr bool kUnderThreadSanitizer = false;
#endif

// Divisor applied to stress sizes: BEAT_STRESS_DIVISOR if set to a positive
// integer, else 20 under ThreadSanitizer (it slows atomics ~10-50x), else 1.
inline std::uint64_t stress_divisor() noexcept {
  if (const char* env = std::getenv("BEAT_STRESS_DIVISOR"); env != nullptr) {
    char* end = nullptr;
    const unsigned long long v = std::strtoull(env, &end, 10);
    if (end != env && *end == '\0' && v > 0) return v;
  }
  return kUnderThreadSanitizer ? 20 : 1;
}

// `full` divided by stress_divisor(), never below `floor`.
inline std::uint64_t stress_size(std::uint64_t full, std::uint64_t floor = 1) noexcept {
  const std::uint64_t v = full / stress_divisor();
  return v < floor ? floor : v;
}

}  // namespace beat::test
