// C API over beat::Client. Each function catches every exception (the C
// side cannot see one) and turns it into a code and a thread-local message.
#include "client/beat_client.h"

#include <cstddef>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>

#include "client/client.hpp"

struct beat_client {
  std::unique_ptr<beat::Client> client;
};

namespace {

static_assert(sizeof(beat_task) == sizeof(beat::TaskDescriptor));
static_assert(offsetof(beat_task, tag) == offsetof(beat::TaskDescriptor, tag));
static_assert(offsetof(beat_task, kernel_id) == offsetof(beat::TaskDescriptor, kernel_id));
static_assert(offsetof(beat_task, flags) == offsetof(beat::TaskDescriptor, flags));
static_assert(offsetof(beat_task, data_offset) == offsetof(beat::TaskDescriptor, data_offset));
static_assert(offsetof(beat_task, data_length) == offsetof(beat::TaskDescriptor, data_length));
static_assert(offsetof(beat_task, args) == offsetof(beat::TaskDescriptor, args));
static_assert(offsetof(beat_task, fingerprint) == offsetof(beat::TaskDescriptor, fingerprint));
static_assert(sizeof(beat_completion) == sizeof(beat::Completion));
static_assert(offsetof(beat_completion, tag) == offsetof(beat::Completion, tag));
static_assert(offsetof(beat_completion, status) == offsetof(beat::Completion, status));
static_assert(offsetof(beat_completion, detail) == offsetof(beat::Completion, detail));
static_assert(offsetof(beat_completion, result) == offsetof(beat::Completion, result));
static_assert(BEAT_TASK_USES_DATA == beat::kTaskFlagUsesData);
static_assert(BEAT_TASK_ORDERED == beat::kTaskFlagOrdered);
static_assert(BEAT_E_PERMISSION_DENIED == static_cast<int>(beat::ErrorCode::kPermissionDenied));
static_assert(BEAT_E_RESOURCE_EXHAUSTED == static_cast<int>(beat::ErrorCode::kResourceExhausted));
static_assert(BEAT_E_SHUTTING_DOWN == static_cast<int>(beat::ErrorCode::kShuttingDown));
static_assert(BEAT_E_WOULD_BLOCK == static_cast<int>(beat::ErrorCode::kWouldBlock));
static_assert(BEAT_STATUS_DROPPED == static_cast<std::uint32_t>(beat::TaskStatus::kDropped));

thread_local std::string t_last_error;

int fail(const beat::Status& s) {
  t_last_error = s.message();
  return static_cast<int>(s.code());
}

int fail(beat::ErrorCode code, std::string message) {
  t_last_error = std::move(message);
  return static_cast<int>(code);
}

int fail_exception() {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    return fail(beat::ErrorCode::kResourceExhausted, "out of memory");
  } catch (const std::exception& e) {
    return fail(beat::ErrorCode::kIo, std::string("unexpected error: ") + e.what());
  } catch (...) {
    return fail(beat::ErrorCode::kIo, "unexpected non-standard exception");
  }
}

int null_client(const char* function) {
  return fail(beat::ErrorCode::kInvalidArgument, std::string(function) + ": client is NULL");
}

void copy_out(const beat::Completion* in, beat_completion* out, std::size_t n) {
  // Layout-identical (asserted above): memcpy keeps this free of aliasing UB.
  std::memcpy(out, in, n * sizeof(beat_completion));
}

}  // namespace

extern "C" {

int beat_connect(const char* socket_path, const char* name, beat_client** out) {
  if (out == nullptr) return fail(beat::ErrorCode::kInvalidArgument, "beat_connect: out is NULL");
  *out = nullptr;
  try {
    beat::ClientOptions options;
    if (socket_path != nullptr) options.socket_path = socket_path;
    if (name != nullptr) options.name = name;
    auto client = beat::Client::connect(options);
    if (!client) return fail(client.status());
    *out = new beat_client{std::move(client.value())};
    return BEAT_OK;
  } catch (...) {
    return fail_exception();
  }
}

void beat_disconnect(beat_client* client) {
  try {
    delete client;
  } catch (...) {
    (void)fail_exception();
  }
}

int beat_kernel_id(beat_client* client, const char* name, uint32_t* out) {
  if (client == nullptr) return null_client("beat_kernel_id");
  if (name == nullptr || out == nullptr)
    return fail(beat::ErrorCode::kInvalidArgument, "beat_kernel_id: name or out is NULL");
  try {
    auto id = client->client->kernel_id(name);
    if (!id) return fail(id.status());
    *out = id.value();
    return BEAT_OK;
  } catch (...) {
    return fail_exception();
  }
}

int beat_arena_alloc(beat_client* client, uint64_t bytes, uint64_t alignment, beat_block* out) {
  if (client == nullptr) return null_client("beat_arena_alloc");
  if (out == nullptr)
    return fail(beat::ErrorCode::kInvalidArgument, "beat_arena_alloc: out is NULL");
  try {
    auto block = client->client->allocate(bytes, alignment == 0 ? beat::kArenaGranule : alignment);
    if (!block) return fail(block.status());
    out->offset = block->offset;
    out->length = block->length;
    out->data = block->data;
    return BEAT_OK;
  } catch (...) {
    return fail_exception();
  }
}

int beat_arena_free(beat_client* client, const beat_block* block) {
  if (client == nullptr) return null_client("beat_arena_free");
  if (block == nullptr)
    return fail(beat::ErrorCode::kInvalidArgument, "beat_arena_free: block is NULL");
  try {
    beat::ArenaBlock b{block->offset, block->length, static_cast<std::byte*>(block->data)};
    if (!client->client->release(b))
      return fail(beat::ErrorCode::kInvalidArgument,
                  "beat_arena_free: no allocated block starts at arena offset " +
                      std::to_string(block->offset));
    return BEAT_OK;
  } catch (...) {
    return fail_exception();
  }
}

void* beat_arena_base(beat_client* client) {
  return client == nullptr ? nullptr : client->client->arena_base();
}

uint64_t beat_arena_bytes(beat_client* client) {
  return client == nullptr ? 0 : client->client->arena_bytes();
}

int beat_submit(beat_client* client, const beat_task* tasks, size_t n, int nonblocking) {
  if (client == nullptr) return null_client("beat_submit");
  if (tasks == nullptr && n > 0)
    return fail(beat::ErrorCode::kInvalidArgument,
                "beat_submit: tasks is NULL with n = " + std::to_string(n));
  try {
    const beat::Status s = client->client->submit_images(
        tasks, n, nonblocking != 0 ? beat::SubmitMode::kNonBlocking : beat::SubmitMode::kBlock);
    return s ? BEAT_OK : fail(s);
  } catch (...) {
    return fail_exception();
  }
}

int beat_wait(beat_client* client, beat_completion* out, size_t cap, size_t min, int64_t timeout_ns,
              size_t* got) {
  if (got != nullptr) *got = 0;
  if (client == nullptr) return null_client("beat_wait");
  if (got == nullptr || (out == nullptr && cap > 0))
    return fail(beat::ErrorCode::kInvalidArgument, "beat_wait: out or got is NULL");
  if (min > cap)
    return fail(beat::ErrorCode::kInvalidArgument,
                "beat_wait: min " + std::to_string(min) + " exceeds cap " + std::to_string(cap));
  try {
    // Reap into a typed buffer and copy out, in chunks; the first chunk
    // carries the whole wait, later ones take only what is ready.
    constexpr std::size_t kChunk = 256;
    beat::Completion buffer[kChunk];
    const auto timeout =
        timeout_ns < 0 ? std::chrono::nanoseconds::max() : std::chrono::nanoseconds(timeout_ns);
    const auto deadline_free = timeout == std::chrono::nanoseconds::max();
    const auto start = std::chrono::steady_clock::now();
    std::size_t total = 0;
    while (total < cap) {
      const std::size_t room = std::min(kChunk, cap - total);
      const std::size_t need = total < min ? std::min(room, min - total) : 0;
      std::size_t n = 0;
      if (need == 0) {
        n = client->client->poll({buffer, room});
      } else {
        auto left = deadline_free ? timeout : timeout - (std::chrono::steady_clock::now() - start);
        if (left < std::chrono::nanoseconds::zero()) left = std::chrono::nanoseconds::zero();
        auto r = client->client->wait({buffer, room}, need, left);
        if (!r) {
          *got = total;
          // What was reaped earlier is delivered; the error stands only
          // when nothing was.
          return total > 0 ? BEAT_OK : fail(r.status());
        }
        n = r.value();
      }
      copy_out(buffer, out + total, n);
      total += n;
      *got = total;
      if (n < room && total >= min) break;  // drained what was ready
      if (n < need) break;                  // timed out short of min
    }
    return BEAT_OK;
  } catch (...) {
    return fail_exception();
  }
}

int beat_poll(beat_client* client, beat_completion* out, size_t cap, size_t* got) {
  if (got != nullptr) *got = 0;
  if (client == nullptr) return null_client("beat_poll");
  if (got == nullptr || (out == nullptr && cap > 0))
    return fail(beat::ErrorCode::kInvalidArgument, "beat_poll: out or got is NULL");
  constexpr std::size_t kChunk = 256;
  beat::Completion buffer[kChunk];
  std::size_t total = 0;
  while (total < cap) {
    const std::size_t room = std::min(kChunk, cap - total);
    const std::size_t n = client->client->poll({buffer, room});
    copy_out(buffer, out + total, n);
    total += n;
    if (n < room) break;
  }
  *got = total;
  return BEAT_OK;
}

const char* beat_last_error(void) { return t_last_error.c_str(); }

}  // extern "C"
