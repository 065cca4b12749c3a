#include "shared/doorbell.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

namespace beat {

namespace {

long futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t val,
           const struct timespec* timeout) noexcept {
  // No FUTEX_PRIVATE_FLAG: the word lives in a MAP_SHARED segment and the
  // other side is another process.
  return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op, val, timeout, nullptr, 0);
}

}  // namespace

bool futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                const struct timespec* timeout) noexcept {
  const long r = futex(word, FUTEX_WAIT, expected, timeout);
  return !(r == -1 && errno == ETIMEDOUT);
}

int futex_wake(std::atomic<std::uint32_t>* word, int count) noexcept {
  const long r = futex(word, FUTEX_WAKE, static_cast<std::uint32_t>(count), nullptr);
  return r < 0 ? 0 : static_cast<int>(r);
}

int futex_wait_any(const FutexWaitItem* items, int count, std::int64_t timeout_ns) noexcept {
#ifdef SYS_futex_waitv
  if (count <= 0 || count > kMaxFutexWaitItems) return -1;
  struct futex_waitv waiters[kMaxFutexWaitItems] = {};
  for (int i = 0; i < count; ++i) {
    waiters[i].val = items[i].expected;
    waiters[i].uaddr = reinterpret_cast<std::uintptr_t>(items[i].word);
    waiters[i].flags = FUTEX_32;  // shared: no FUTEX_PRIVATE_FLAG
  }
  struct timespec deadline {};
  struct timespec* deadline_ptr = nullptr;
  if (timeout_ns >= 0) {
    // futex_waitv takes an absolute timeout on the given clock.
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    const std::int64_t ns = deadline.tv_nsec + timeout_ns % 1000000000;
    deadline.tv_sec += static_cast<time_t>(timeout_ns / 1000000000 + ns / 1000000000);
    deadline.tv_nsec = static_cast<long>(ns % 1000000000);
    deadline_ptr = &deadline;
  }
  const long r = syscall(SYS_futex_waitv, waiters, count, 0, deadline_ptr, CLOCK_MONOTONIC);
  if (r >= 0) return static_cast<int>(r);
  if (errno == ENOSYS) return -2;
  return -1;
#else
  (void)items;
  (void)count;
  (void)timeout_ns;
  return -2;
#endif
}

}  // namespace beat
