// beat::Client: an application's session with beatd.
//
// A Client connects to the daemon's control socket, says HELLO, maps the
// shared-memory segment the daemon hands back (SCM_RIGHTS) and then talks to
// the daemon through that segment only:
//
//   submit()   writes TaskDescriptors into the submission ring (SQ) and rings
//              the daemon's doorbell if a worker is parked;
//   wait()/poll() copy CompletionEntries out of the completion ring (CQ);
//   allocate()/release() hand out blocks of the client's arena, the memory a
//              descriptor's data_offset/data_length refer to.
//
// Typical use:
//
//   auto client = beat::Client::connect({.name = "my-app"});
//   auto sum = client.value()->kernel_id("checksum");
//   auto block = client.value()->allocate(4096);          // fill block->data
//   beat::TaskDescriptor t = beat::make_task(*sum, /*tag=*/1, {seed}, *block);
//   client.value()->submit({&t, 1});
//   beat::Completion c[1];
//   client.value()->wait(c);                              // c[0].tag == 1
//
// Ordering guarantee: when wait() or poll() returns a completion, every
// effect of its kernel on the arena is visible to the calling thread (the
// daemon publishes cq.tail with release after running the kernel; the
// client loads it with acquire). Arena bytes written before submit() are
// visible to the kernel (submit publishes sq.tail with release).
//
// Thread-safety, per method:
//   connect, the destructor: one thread, with no other call in flight.
//   submit, allocate, release, kernel_id, kernels, stats_json, make_task and
//   the accessors: any thread, concurrently.
//   wait, poll: any thread, but they serialize on one consumer lock: one
//   thread at a time reaps the CQ, and a completion goes to whichever thread
//   reaps it.
//
// Hot path: submit and poll/wait allocate nothing and make no syscall unless
// a futex wait or wake is needed (a parked worker, a full ring, an empty CQ).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "client/arena_allocator.hpp"
#include "client/control_connection.hpp"
#include "shared/protocol.hpp"
#include "shared/segment_layout.hpp"
#include "shared/status.hpp"

namespace beat {

struct ClientOptions {
  std::string socket_path = default_socket_path();
  // Shown in the daemon's logs and STATS; truncated to 31 bytes.
  std::string name = "client";
  // Ring and arena sizes to ask for; the daemon may clamp them (see layout()).
  SegmentRequest segment{};
  // How long wait() and a blocked submit() spin before parking on a futex.
  std::chrono::microseconds spin{50};
};

// A block of the arena: [offset, offset + length) relative to the arena start,
// and the same bytes at `data` in this process.
struct ArenaBlock {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::byte* data = nullptr;
};

enum class SubmitMode {
  kBlock,        // wait for room; split batches larger than the SQ
  kNonBlocking,  // all or nothing: kWouldBlock when the whole batch does not fit now
};

// One completed task, as the client sees it.
struct Completion {
  std::uint64_t tag = 0;
  TaskStatus status = TaskStatus::kOk;
  std::uint32_t detail = 0;
  std::uint64_t result = 0;
};

// Builds a descriptor. With `data`, sets kTaskFlagUsesData and the block's
// range. REQUIRES: args.size() <= kInlineArgs (extra words are a programming
// error: asserted in debug builds, ignored otherwise).
TaskDescriptor make_task(std::uint32_t kernel, std::uint64_t tag,
                         std::initializer_list<std::uint64_t> args = {},
                         std::optional<ArenaBlock> data = {}) noexcept;

class Client {
 public:
  // Connects to options.socket_path, says HELLO, maps the segment and checks
  // its header against the layout in HELLO_OK. Errors name the socket path,
  // or the header field that disagrees.
  static Result<std::unique_ptr<Client>> connect(const ClientOptions& options = {});

  // Sends BYE (best effort, bounded wait), unmaps the segment, closes the
  // socket. Tasks still in flight are dropped by the daemon.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // ---- kernels and daemon info (control socket; any thread) ----

  // Id of the kernel called `name`. The first call fetches KERNELS and caches
  // the table for the session; a name missing from the cache fetches it once
  // more (the daemon may have loaded a plugin since). Ids never change while
  // the daemon runs. Unknown name: kNotFound naming it.
  Result<std::uint32_t> kernel_id(std::string_view name);
  // {id, name, origin, description} of every kernel, fetched from the
  // daemon on every call (and refreshing kernel_id's cache).
  Result<std::vector<KernelListing>> kernels();
  // The daemon's STATS JSON object (fetched on every call).
  Result<std::string> stats_json();

  // ---- arena (any thread; a private mutex guards the allocator) ----

  // A block of at least `bytes` bytes whose address is aligned to
  // `alignment` (a power of two; blocks are at least 64-byte aligned).
  // kInvalidArgument for bytes == 0 or a bad alignment; kResourceExhausted
  // when no free range fits (the message gives the largest one).
  Result<ArenaBlock> allocate(std::uint64_t bytes, std::uint64_t alignment = kArenaGranule);
  // Returns a block to the arena. REQUIRES: no task in flight reads it.
  // Returns false and changes nothing when `block` is not currently
  // allocated (double release), so misuse cannot corrupt the free list.
  bool release(const ArenaBlock& block);
  std::byte* arena_base() const noexcept { return view_.arena; }
  std::uint64_t arena_bytes() const noexcept { return view_.layout.arena_bytes; }

  // ---- tasks ----

  // Publishes `batch` to the daemon in order. Any thread.
  //  - kNonBlocking: all or nothing. kWouldBlock when the SQ lacks room for
  //    the whole batch right now; kInvalidArgument when the batch is larger
  //    than the SQ (layout().sq_entries).
  //  - kBlock: waits (spin, then futex) for room; takes what fits as soon as
  //    any slot frees, so batches larger than the SQ are split. If it fails
  //    part-way, the message says how many tasks were accepted (the first
  //    ones, in order).
  // kShuttingDown when the daemon drains or is gone: tasks accepted before
  // that still complete; none of the failed call's remaining tasks do.
  // kInvalidArgument when a descriptor carries kTaskFlagCancelled (the
  // daemon validates everything else and reports it in the completion).
  // Keep tasks in flight <= layout().cq_entries and reap them: the daemon
  // stalls a client whose CQ is full, so a blocking submit that nobody
  // balances with wait() can wait forever.
  Status submit(std::span<const TaskDescriptor> batch, SubmitMode mode = SubmitMode::kBlock);

  // For language bindings: `descriptors` points at `count` contiguous
  // 64-byte images laid out exactly as TaskDescriptor (copied with memcpy).
  Status submit_images(const void* descriptors, std::size_t count, SubmitMode mode);

  // Reaps completions into `out`; returns how many it wrote:
  //  - at least min_count (REQUIRES min_count <= out.size(), else
  //    kInvalidArgument), and as many more as are ready, up to out.size();
  //  - when `timeout` passes first: what it has (possibly fewer than
  //    min_count); kTimedOut only when that is none;
  //  - kShuttingDown when the daemon is gone and the CQ is empty (after
  //    returning every completion it had delivered).
  // min_count == 0 behaves like poll() but may wait for the consumer lock.
  // Spins for options.spin, then parks on the CQ doorbell (futex), waking at
  // least every 100 ms to check that the daemon is alive.
  Result<std::size_t> wait(std::span<Completion> out, std::size_t min_count = 1,
                           std::chrono::nanoseconds timeout = std::chrono::nanoseconds::max());
  // Reaps what is ready now, up to out.size(). Never blocks: returns 0 when
  // another thread holds the consumer lock.
  std::size_t poll(std::span<Completion> out) noexcept;

  // ---- session facts ----
  std::uint32_t client_id() const noexcept { return client_id_; }
  std::uint32_t worker_count() const noexcept { return worker_count_; }
  const SegmentLayout& layout() const noexcept { return view_.layout; }
  const std::string& segment_name() const noexcept { return segment_name_; }
  const std::string& socket_path() const noexcept { return control_.socket_path(); }
  std::uint64_t daemon_instance() const noexcept { return daemon_instance_; }
  // True once the daemon closed the control connection (checked on demand).
  bool daemon_gone() const noexcept;

 private:
  Client(ControlConnection control, void* mapping, const SegmentLayout& layout,
         std::chrono::microseconds spin);

  bool draining() const noexcept;
  std::uint32_t free_sq_slots() const noexcept;
  // Writes `count` images into reserved slots [start, start+count), commits
  // them and rings the daemon's doorbell; cancels them instead when the
  // daemon started draining after the reservation.
  Status publish(std::uint32_t start, const std::byte* images, std::uint32_t count);
  // Blocks until at least one SQ slot is free (or the daemon drains/dies).
  Status wait_for_sq_space();
  // REQUIRES: the consumer token. Copies up to `capacity` ready entries.
  std::size_t reap_locked(Completion* out, std::size_t capacity) noexcept;
  Status ensure_kernel_table();  // REQUIRES: control_mutex_ held

  // Owned by whichever thread holds control_mutex_.
  std::mutex control_mutex_;
  ControlConnection control_;
  std::vector<KernelListing> kernel_table_;                    // GUARDED_BY(control_mutex_)
  std::unordered_map<std::string, std::uint32_t> kernel_ids_;  // GUARDED_BY(control_mutex_)
  bool kernel_table_loaded_ = false;                           // GUARDED_BY(control_mutex_)

  // Immutable after construction.
  void* mapping_;
  SegmentView view_;
  std::uint32_t sq_mask_;
  std::uint32_t cq_mask_;
  std::chrono::microseconds spin_;
  std::uint32_t client_id_ = 0;
  std::uint32_t worker_count_ = 0;
  std::uint64_t daemon_instance_ = 0;
  std::string segment_name_;

  // Stores the allocator's bytes in use in the segment header. REQUIRES arena_mutex_.
  void publish_arena_use() noexcept;
  // Whether the batch being published carries this tick's latency sample.
  bool take_latency_sample() noexcept;
  std::atomic<std::uint64_t> last_sample_tick_{0};  // CLOCK_MONOTONIC_COARSE ns
  std::mutex arena_mutex_;
  ArenaAllocator arena_;  // GUARDED_BY(arena_mutex_)

  // Submitters parked on sq_space: sq_space.needs_wakeup is set while this
  // is non-zero and cleared by the last one to leave (under the mutex, so a
  // leaving thread cannot clear the flag a newly arriving one relies on).
  std::mutex sq_space_mutex_;
  std::uint32_t sq_space_waiters_ = 0;  // GUARDED_BY(sq_space_mutex_)

  // One CQ consumer at a time: a token taken and returned under
  // consumer_mutex_, waited for on consumer_cv_ (a std::timed_mutex would do,
  // but GCC 12's ThreadSanitizer cannot see pthread_mutex_clocklock and
  // reports false races). cq_head_ is the token holder's private copy of
  // cq.head (only the consumer writes cq.head, so it never needs a reload).
  class ConsumerToken;
  std::mutex consumer_mutex_;
  std::condition_variable consumer_cv_;
  bool consumer_busy_ = false;  // GUARDED_BY(consumer_mutex_)
  std::uint32_t cq_head_ = 0;   // owned by the token holder

  // Last sq.head any submitter loaded (try_reserve_cached): submitters read
  // the daemon's head line only when this says the ring is full.
  alignas(kCacheLine) std::atomic<std::uint32_t> sq_head_cache_{0};

  // Set once the daemon's end of the control socket is seen closed.
  mutable std::atomic<bool> daemon_gone_{false};
};

}  // namespace beat
