#include "client/client.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <thread>

#include "shared/doorbell.hpp"
#include "shared/fingerprint.hpp"
#include "shared/ring.hpp"

namespace beat {

namespace {

using Clock = std::chrono::steady_clock;

// Longest single futex sleep: a daemon that died without waking us is
// noticed (control socket EOF) within this long.
constexpr std::chrono::milliseconds kLivenessCheckInterval{100};
// Bound on the BYE round trip in the destructor.
constexpr std::chrono::milliseconds kByeTimeout{1000};

timespec to_timespec(std::chrono::nanoseconds d) noexcept {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(d.count() / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(d.count() % 1'000'000'000);
  return ts;
}

Status layout_mismatch(const char* field, std::uint64_t got, std::uint64_t want,
                       const std::string& path) {
  return Status(ErrorCode::kProtocol, "HELLO_OK from beatd at " + path + " has " + field + " " +
                                          std::to_string(got) + ", but the layout computed from " +
                                          "its ring and arena sizes has " + std::to_string(want));
}

}  // namespace

// RAII holder of the consumer token (see Client::consumer_busy_).
class Client::ConsumerToken {
 public:
  explicit ConsumerToken(Client& c) noexcept : c_(c) {}
  ~ConsumerToken() {
    if (!held_) return;
    {
      std::lock_guard lock(c_.consumer_mutex_);
      c_.consumer_busy_ = false;
    }
    c_.consumer_cv_.notify_one();
  }
  ConsumerToken(const ConsumerToken&) = delete;
  ConsumerToken& operator=(const ConsumerToken&) = delete;

  bool try_take() noexcept {
    std::lock_guard lock(c_.consumer_mutex_);
    if (c_.consumer_busy_) return false;
    c_.consumer_busy_ = held_ = true;
    return true;
  }
  // Waits until the token is free or `deadline` passes.
  bool take_until(Clock::time_point deadline) {
    std::unique_lock lock(c_.consumer_mutex_);
    if (deadline == Clock::time_point::max()) {
      c_.consumer_cv_.wait(lock, [this] { return !c_.consumer_busy_; });
    } else if (!c_.consumer_cv_.wait_until(lock, deadline, [this] { return !c_.consumer_busy_; })) {
      return false;
    }
    c_.consumer_busy_ = held_ = true;
    return true;
  }

 private:
  Client& c_;
  bool held_ = false;
};

TaskDescriptor make_task(std::uint32_t kernel, std::uint64_t tag,
                         std::initializer_list<std::uint64_t> args,
                         std::optional<ArenaBlock> data) noexcept {
  assert(args.size() <= kInlineArgs);
  TaskDescriptor d{};
  d.tag = tag;
  d.kernel_id = kernel;
  d.flags = kTaskFlagNone;
  std::size_t i = 0;
  for (std::uint64_t a : args) {
    if (i == kInlineArgs) break;
    d.args[i++] = a;
  }
  if (data) {
    d.flags = kTaskFlagUsesData;
    d.data_offset = data->offset;
    d.data_length = data->length;
  }
  return d;
}

// ---------------------------------------------------------------------------
// Session setup and teardown
// ---------------------------------------------------------------------------

Result<std::unique_ptr<Client>> Client::connect(const ClientOptions& options) {
  const SegmentRequest& req = options.segment;
  if (!compute_layout(req.sq_entries, req.cq_entries, req.arena_bytes))
    return Status(ErrorCode::kInvalidArgument,
                  "segment request sq_entries=" + std::to_string(req.sq_entries) +
                      " cq_entries=" + std::to_string(req.cq_entries) +
                      " arena_bytes=" + std::to_string(req.arena_bytes) +
                      " is invalid: ring sizes must be powers " + "of two in [" +
                      std::to_string(kMinRingEntries) + ", " + std::to_string(kMaxRingEntries) +
                      "], the arena at most " + std::to_string(kMaxArenaBytes) + " bytes");

  auto control = ControlConnection::open(options.socket_path);
  if (!control) return control.status();
  const std::string& path = options.socket_path;

  HelloRequest hello{};
  hello.version = kProtocolVersion;
  hello.sq_entries = req.sq_entries;
  hello.cq_entries = req.cq_entries;
  hello.arena_bytes = req.arena_bytes;
  copy_fixed(hello.client_name, options.name);
  auto frame = control->request(MessageType::kHello, as_bytes_of(hello), MessageType::kHelloOk);
  if (!frame) return frame.status();
  // From here on the descriptor is ours to close on every path.
  const int seg_fd = frame->fd;
  auto fail = [seg_fd](Status s) -> Status {
    if (seg_fd >= 0) ::close(seg_fd);
    return s;
  };
  if (frame->payload.size() != sizeof(HelloReply))
    return fail(Status(ErrorCode::kProtocol, "HELLO_OK from beatd at " + path + " has " +
                                                 std::to_string(frame->payload.size()) +
                                                 " bytes, expected " +
                                                 std::to_string(sizeof(HelloReply))));
  if (seg_fd < 0)
    return fail(Status(ErrorCode::kProtocol,
                       "HELLO_OK from beatd at " + path + " carried no segment descriptor"));
  HelloReply reply;
  std::memcpy(&reply, frame->payload.data(), sizeof(reply));
  if (reply.version != kProtocolVersion)
    return fail(Status(ErrorCode::kProtocol, "beatd at " + path + " speaks protocol version " +
                                                 std::to_string(reply.version) + ", this client " +
                                                 std::to_string(kProtocolVersion)));
  const auto layout = compute_layout(reply.sq_entries, reply.cq_entries, reply.arena_bytes);
  if (!layout)
    return fail(Status(ErrorCode::kProtocol,
                       "HELLO_OK from beatd at " + path + " announces an invalid layout: " +
                           "sq_entries=" + std::to_string(reply.sq_entries) +
                           " cq_entries=" + std::to_string(reply.cq_entries) +
                           " arena_bytes=" + std::to_string(reply.arena_bytes)));
  if (reply.sq_offset != layout->sq_offset)
    return fail(layout_mismatch("sq_offset", reply.sq_offset, layout->sq_offset, path));
  if (reply.cq_offset != layout->cq_offset)
    return fail(layout_mismatch("cq_offset", reply.cq_offset, layout->cq_offset, path));
  if (reply.arena_offset != layout->arena_offset)
    return fail(layout_mismatch("arena_offset", reply.arena_offset, layout->arena_offset, path));
  if (reply.arena_bytes != layout->arena_bytes)
    return fail(layout_mismatch("arena_bytes", reply.arena_bytes, layout->arena_bytes, path));
  if (reply.total_bytes != layout->total_bytes)
    return fail(layout_mismatch("total_bytes", reply.total_bytes, layout->total_bytes, path));

  struct stat st {};
  if (::fstat(seg_fd, &st) != 0)
    return fail(Status(ErrorCode::kIo, std::string("fstat of the segment from beatd at ") + path +
                                           " failed: " + std::strerror(errno)));
  if (static_cast<std::uint64_t>(st.st_size) < layout->total_bytes)
    return fail(Status(ErrorCode::kProtocol,
                       "segment from beatd at " + path + " is " + std::to_string(st.st_size) +
                           " bytes, its layout needs " + std::to_string(layout->total_bytes)));
  void* mapping =
      ::mmap(nullptr, layout->total_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, seg_fd, 0);
  const int map_errno = errno;
  ::close(seg_fd);  // the mapping keeps the segment alive
  if (mapping == MAP_FAILED)
    return Status(ErrorCode::kIo, "mmap of " + std::to_string(layout->total_bytes) +
                                      " bytes of the segment from beatd at " + path +
                                      " failed: " + std::strerror(map_errno));
  const auto* header = static_cast<const SegmentHeader*>(mapping);
  if (std::string bad = check_header(*header, *layout); !bad.empty()) {
    ::munmap(mapping, layout->total_bytes);
    return Status(ErrorCode::kProtocol, "segment from beatd at " + path + ": " + bad);
  }
  if (header->client_id != reply.client_id) {
    ::munmap(mapping, layout->total_bytes);
    return Status(ErrorCode::kProtocol, "segment from beatd at " + path + " belongs to client " +
                                            std::to_string(header->client_id) + ", HELLO_OK says " +
                                            std::to_string(reply.client_id));
  }

  std::unique_ptr<Client> client(
      new Client(std::move(control.value()), mapping, *layout, options.spin));
  client->client_id_ = reply.client_id;
  client->worker_count_ = reply.worker_count;
  client->daemon_instance_ = reply.daemon_instance;
  client->segment_name_ = read_fixed(reply.segment_name);
  return client;
}

Client::Client(ControlConnection control, void* mapping, const SegmentLayout& layout,
               std::chrono::microseconds spin)
    : control_(std::move(control)),
      mapping_(mapping),
      view_(SegmentView::over(mapping, layout)),
      sq_mask_(layout.sq_entries - 1),
      cq_mask_(layout.cq_entries - 1),
      spin_(spin),
      arena_(layout.arena_bytes, reinterpret_cast<std::uintptr_t>(view_.arena)) {
  // Relaxed: the header was written before the descriptor was sent to us.
  cq_head_ = view_.header->cq.head.value.load(std::memory_order_relaxed);
}

Client::~Client() {
  {
    std::lock_guard lock(control_mutex_);
    control_.say_goodbye(kByeTimeout);
  }
  ::munmap(mapping_, view_.layout.total_bytes);
}

bool Client::daemon_gone() const noexcept {
  if (daemon_gone_.load(std::memory_order_relaxed)) return true;
  if (control_.peer_closed()) {
    daemon_gone_.store(true, std::memory_order_relaxed);
    return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Control requests
// ---------------------------------------------------------------------------

Status Client::ensure_kernel_table() {
  if (kernel_table_loaded_) return Status::ok();
  auto listing = control_.kernels();
  if (!listing) return listing.status();
  kernel_table_ = std::move(listing.value());
  kernel_ids_.clear();
  for (const auto& k : kernel_table_) kernel_ids_.emplace(k.name, k.id);
  kernel_table_loaded_ = true;
  return Status::ok();
}

Result<std::uint32_t> Client::kernel_id(std::string_view name) {
  std::lock_guard lock(control_mutex_);
  const bool fetched_now = !kernel_table_loaded_;
  if (Status s = ensure_kernel_table(); !s) return s;
  auto it = kernel_ids_.find(std::string(name));
  if (it == kernel_ids_.end() && !fetched_now) {
    // Not in the cached table: the daemon may have loaded a plugin since
    // (SIGHUP). Ids never change, so refreshing the table is always safe.
    kernel_table_loaded_ = false;
    if (Status s = ensure_kernel_table(); !s) return s;
    it = kernel_ids_.find(std::string(name));
  }
  if (it == kernel_ids_.end()) {
    std::string known;
    for (const auto& k : kernel_table_) known += (known.empty() ? "" : ", ") + k.name;
    return Status(ErrorCode::kNotFound, "beatd at " + control_.socket_path() +
                                            " has no kernel named '" + std::string(name) +
                                            "' (known: " + known + ")");
  }
  return it->second;
}

Result<std::vector<KernelListing>> Client::kernels() {
  std::lock_guard lock(control_mutex_);
  // Fresh on every call (and the cache kernel_id uses with it).
  kernel_table_loaded_ = false;
  if (Status s = ensure_kernel_table(); !s) return s;
  return kernel_table_;
}

Result<std::string> Client::stats_json() {
  std::lock_guard lock(control_mutex_);
  return control_.stats_json();
}

// ---------------------------------------------------------------------------
// Arena
// ---------------------------------------------------------------------------

Result<ArenaBlock> Client::allocate(std::uint64_t bytes, std::uint64_t alignment) {
  if (bytes == 0) return Status(ErrorCode::kInvalidArgument, "arena allocation of 0 bytes");
  if (!is_power_of_two(alignment))
    return Status(ErrorCode::kInvalidArgument,
                  "arena alignment " + std::to_string(alignment) + " is not a power of two");
  std::lock_guard lock(arena_mutex_);
  const auto range = arena_.allocate(bytes, alignment);
  if (!range)
    return Status(ErrorCode::kResourceExhausted,
                  "arena cannot fit " + std::to_string(bytes) + " bytes aligned to " +
                      std::to_string(alignment) + ": " + std::to_string(arena_.bytes_in_use()) +
                      " of " + std::to_string(arena_.capacity()) +
                      " bytes in use, largest free range " +
                      std::to_string(arena_.largest_free_range()));
  publish_arena_use();
  return ArenaBlock{range->offset, bytes, view_.arena + range->offset};
}

bool Client::release(const ArenaBlock& block) {
  std::lock_guard lock(arena_mutex_);
  const bool released = arena_.release(block.offset);
  if (released) publish_arena_use();
  return released;
}

bool Client::take_latency_sample() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  const auto tick = static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
                    static_cast<std::uint64_t>(ts.tv_nsec);
  std::uint64_t last = last_sample_tick_.load(std::memory_order_relaxed);
  // Relaxed: only which submitter takes this tick's sample is decided here;
  // the stamp itself travels with the slot.
  return tick != last &&
         last_sample_tick_.compare_exchange_strong(last, tick, std::memory_order_relaxed);
}

void Client::publish_arena_use() noexcept {
  // Relaxed: a figure for the daemon's beat_arena_used_bytes gauge; nothing
  // is read through it. Under arena_mutex_, so stores are in allocator order.
  view_.header->arena_used_bytes.store(arena_.bytes_in_use(), std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------
// Submission ring (client = producers)
// ---------------------------------------------------------------------------

bool Client::draining() const noexcept {
  // seq_cst: ordered after our reservation CAS (see publish), so either the
  // daemon's drain scan sees our reservation or we see its state.
  return view_.header->daemon_state.load(std::memory_order_seq_cst) ==
         static_cast<std::uint32_t>(DaemonState::kDraining);
}

std::uint32_t Client::free_sq_slots() const noexcept {
  SegmentHeader& h = *view_.header;
  // Relaxed reserve: an estimate; try_reserve revalidates with its CAS.
  const std::uint32_t reserved = h.sq.reserve.value.load(std::memory_order_relaxed);
  // SYNC POINT READ: sq.head (ring rule 3), as in try_reserve.
  const std::uint32_t head = h.sq.head.value.load(std::memory_order_acquire);
  const std::uint32_t used = reserved - head;
  return used >= view_.layout.sq_entries ? 0 : view_.layout.sq_entries - used;
}

Status Client::publish(std::uint32_t start, const std::byte* images, std::uint32_t count) {
  SegmentHeader& h = *view_.header;
  const bool cancel = draining();
  // A latency sample (kTaskFlagStamped): the batch's first task, when the
  // coarse clock (a few ms a tick, read without the TSC) has moved since
  // this client's last sample. Its stamp is the precise publish time, the
  // daemon's CLOCK_MONOTONIC; published with the slot by the tail release.
  const bool sample = !cancel && take_latency_sample();
  if (sample) {
    const auto stamp = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
            .count());
    std::memcpy(&view_.sq_stamps[start & sq_mask_], &stamp, sizeof(stamp));
  }
  for (std::uint32_t i = 0; i < count; ++i) {
    TaskDescriptor* slot = &view_.sq_slots[(start + i) & sq_mask_];
    if (cancel) {
      TaskDescriptor c{};
      c.flags = kTaskFlagCancelled;
      std::memcpy(slot, &c, sizeof(c));
    } else {
      // Through a local copy: the image may be unaligned (the C API's), and
      // a fingerprint left 0 is filled in (shared/fingerprint.hpp).
      TaskDescriptor d;
      std::memcpy(&d, images + std::size_t{i} * sizeof(TaskDescriptor), sizeof(TaskDescriptor));
      if (d.fingerprint == 0) d.fingerprint = make_fingerprint(d);
      if (sample && i == 0) d.flags |= kTaskFlagStamped;
      std::memcpy(slot, &d, sizeof(d));
    }
  }
  // SYNC POINT WRITE: SQ slots [start, start+count) (ring rule 2); pairs with
  // the daemon's acquire load of sq.tail. Cancelled slots are committed too,
  // or later reservations could never commit.
  commit_in_order(h.sq.tail.value, nullptr, start, count);
  ring_doorbell(h.sq_bell, 1);
  if (cancel)
    return Status(ErrorCode::kShuttingDown, "beatd at " + control_.socket_path() +
                                                " is draining: " + std::to_string(count) +
                                                " reserved tasks were cancelled");
  return Status::ok();
}

Status Client::wait_for_sq_space() {
  SegmentHeader& h = *view_.header;
  if (polite_spin<Clock>(Clock::now() + spin_, [&] { return free_sq_slots() > 0; }))
    return Status::ok();
  {
    std::lock_guard lock(sq_space_mutex_);
    if (sq_space_waiters_++ == 0) h.sq_space.needs_wakeup.store(1, std::memory_order_relaxed);
  }
  // SYNC POINT: pairs with the fence in the daemon's ring_doorbell(sq_space)
  // after it advanced sq.head (doorbell.hpp): it sees our flag or we see its head.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const std::uint32_t seq = h.sq_space.seq.load(std::memory_order_acquire);
  if (free_sq_slots() == 0 && !draining()) {
    const timespec ts = to_timespec(kLivenessCheckInterval);
    (void)futex_wait(&h.sq_space.seq, seq, &ts);
  }
  {
    std::lock_guard lock(sq_space_mutex_);
    if (--sq_space_waiters_ == 0) h.sq_space.needs_wakeup.store(0, std::memory_order_relaxed);
  }
  if (free_sq_slots() == 0 && daemon_gone())
    return Status(ErrorCode::kShuttingDown,
                  "beatd at " + control_.socket_path() + " is gone (control socket closed)");
  return Status::ok();
}

Status Client::submit(std::span<const TaskDescriptor> batch, SubmitMode mode) {
  return submit_images(batch.data(), batch.size(), mode);
}

Status Client::submit_images(const void* descriptors, std::size_t count, SubmitMode mode) {
  const auto* images = static_cast<const std::byte*>(descriptors);
  for (std::size_t i = 0; i < count; ++i) {
    std::uint32_t flags;
    std::memcpy(&flags, images + i * sizeof(TaskDescriptor) + offsetof(TaskDescriptor, flags),
                sizeof(flags));
    if ((flags & (kTaskFlagCancelled | kTaskFlagStamped)) != 0) {
      std::uint64_t tag;
      std::memcpy(&tag, images + i * sizeof(TaskDescriptor) + offsetof(TaskDescriptor, tag),
                  sizeof(tag));
      return Status(
          ErrorCode::kInvalidArgument,
          "task " + std::to_string(i) + " (tag " + std::to_string(tag) + ") sets " +
              ((flags & kTaskFlagCancelled) != 0 ? "kTaskFlagCancelled" : "kTaskFlagStamped") +
              ", which only the client library may set");
    }
  }
  if (count == 0) return Status::ok();
  SegmentHeader& h = *view_.header;
  const std::uint32_t entries = view_.layout.sq_entries;
  if (mode == SubmitMode::kNonBlocking && count > entries)
    return Status(ErrorCode::kInvalidArgument, "non-blocking batch of " + std::to_string(count) +
                                                   " tasks exceeds the submission ring of " +
                                                   std::to_string(entries) + " entries");

  std::size_t done = 0;
  auto shutting_down = [&](const std::string& why) {
    return Status(ErrorCode::kShuttingDown, why + "; " + std::to_string(done) + " of " +
                                                std::to_string(count) + " tasks were accepted");
  };
  while (done < count) {
    if (draining()) return shutting_down("beatd at " + control_.socket_path() + " is draining");
    if (daemon_gone_.load(std::memory_order_relaxed))
      return shutting_down("beatd at " + control_.socket_path() + " is gone");
    std::uint32_t want = static_cast<std::uint32_t>(std::min<std::size_t>(count - done, entries));
    std::optional<std::uint32_t> start =
        try_reserve_cached(h.sq.reserve.value, h.sq.head.value, sq_head_cache_, entries, want);
    if (!start) {
      if (mode == SubmitMode::kNonBlocking)
        return Status(ErrorCode::kWouldBlock,
                      "submission ring has " + std::to_string(free_sq_slots()) + " of " +
                          std::to_string(entries) + " slots free, batch needs " +
                          std::to_string(want));
      // Blocking: take whatever is free now rather than wait for a window
      // as large as the whole batch (other submitters may never leave one).
      const std::uint32_t free_now = free_sq_slots();
      if (free_now > 0 && free_now < want) {
        want = free_now;
        start =
            try_reserve_cached(h.sq.reserve.value, h.sq.head.value, sq_head_cache_, entries, want);
      }
      if (!start) {
        if (Status s = wait_for_sq_space(); !s) return shutting_down(s.message());
        continue;
      }
    }
    if (Status s = publish(*start, images + done * sizeof(TaskDescriptor), want); !s)
      return shutting_down(s.message());
    done += want;
  }
  return Status::ok();
}

// ---------------------------------------------------------------------------
// Completion ring (client = the single consumer)
// ---------------------------------------------------------------------------

std::size_t Client::reap_locked(Completion* out, std::size_t capacity) noexcept {
  SegmentHeader& h = *view_.header;
  // Readiness by the slot's own seq (ring rule 5), not cq.tail: the entry and
  // its readiness arrive on one cache line, saving a second cross-core miss
  // per completion on the latency path.
  std::size_t n = 0;
  while (n < capacity) {
    const std::uint32_t index = cq_head_ + static_cast<std::uint32_t>(n);
    CompletionEntry& slot = view_.cq_slots[index & cq_mask_];
    // SYNC POINT READ: pairs with the daemon's release store of seq, made
    // after the entry's other fields.
    if (std::atomic_ref<std::uint64_t>(slot.seq).load(std::memory_order_acquire) !=
        std::uint64_t{index} + 1)
      break;
    out[n].tag = slot.tag;
    out[n].status = static_cast<TaskStatus>(slot.status);
    out[n].detail = slot.detail;
    out[n].result = slot.result;
    ++n;
  }
  if (n > 0) {
    cq_head_ += static_cast<std::uint32_t>(n);
    // SYNC POINT WRITE: cq.head (ring rule 3): our copies are done, the
    // daemon may reuse the slots; pairs with its acquire load of cq.head.
    h.cq.head.value.store(cq_head_, std::memory_order_release);
    // A worker that found our CQ full parked on cq_space: tell it there is
    // room again (doorbell protocol; one fence and one load when nobody waits).
    ring_doorbell(h.cq_space, 1);
  }
  return n;
}

std::size_t Client::poll(std::span<Completion> out) noexcept {
  if (out.empty()) return 0;
  ConsumerToken token(*this);
  if (!token.try_take()) return 0;
  return reap_locked(out.data(), out.size());
}

Result<std::size_t> Client::wait(std::span<Completion> out, std::size_t min_count,
                                 std::chrono::nanoseconds timeout) {
  if (min_count > out.size())
    return Status(ErrorCode::kInvalidArgument, "wait for at least " + std::to_string(min_count) +
                                                   " completions into a buffer of " +
                                                   std::to_string(out.size()));
  // A timeout this long is "forever": adding it to now() would overflow.
  constexpr auto kForever = std::chrono::hours(24 * 365 * 100);
  const bool forever = timeout >= kForever;
  const auto start = Clock::now();
  const auto deadline = forever ? Clock::time_point::max() : start + timeout;

  ConsumerToken token(*this);
  if (!token.take_until(deadline)) {
    if (min_count == 0) return std::size_t{0};
    return Status(ErrorCode::kTimedOut, "no completion within " + std::to_string(timeout.count()) +
                                            " ns (another thread held the consumer lock)");
  }

  SegmentHeader& h = *view_.header;
  std::size_t got = reap_locked(out.data(), out.size());
  // Spin first (politely: yielding every kSpinYieldInterval), then park.
  const auto spin_until = std::min(start + spin_, deadline);
  if (got < min_count)
    polite_spin<Clock>(spin_until, [&] {
      got += reap_locked(out.data() + got, out.size() - got);
      return got >= min_count;
    });
  while (got < min_count) {
    const auto now = Clock::now();
    if (now >= deadline) break;
    // Park (doorbell.hpp waiter protocol). Only the consumer-lock holder
    // sleeps on cq_bell, so it alone sets and clears the flag.
    h.cq_bell.needs_wakeup.store(1, std::memory_order_relaxed);
    // SYNC POINT: pairs with the fence in the daemon's ring_doorbell(cq_bell)
    // after it published cq.tail: it sees our flag or we see its tail.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    const std::uint32_t seq = h.cq_bell.seq.load(std::memory_order_acquire);
    const std::size_t more = reap_locked(out.data() + got, out.size() - got);
    if (more == 0) {
      if (daemon_gone()) {
        h.cq_bell.needs_wakeup.store(0, std::memory_order_relaxed);
        // One last look: the daemon may have completed tasks just before exiting.
        got += reap_locked(out.data() + got, out.size() - got);
        if (got > 0) return got;
        return Status(ErrorCode::kShuttingDown,
                      "beatd at " + control_.socket_path() +
                          " closed the connection and no completions are pending");
      }
      auto sleep_for = std::chrono::duration_cast<std::chrono::nanoseconds>(kLivenessCheckInterval);
      if (!forever) sleep_for = std::min(sleep_for, std::chrono::nanoseconds(deadline - now));
      const timespec ts = to_timespec(sleep_for);
      (void)futex_wait(&h.cq_bell.seq, seq, &ts);
    }
    h.cq_bell.needs_wakeup.store(0, std::memory_order_relaxed);
    got += more + reap_locked(out.data() + got + more, out.size() - got - more);
  }
  if (got == 0 && min_count > 0) {
    if (daemon_gone())
      return Status(ErrorCode::kShuttingDown,
                    "beatd at " + control_.socket_path() +
                        " closed the connection and no completions are pending");
    return Status(ErrorCode::kTimedOut,
                  "no completion within " + std::to_string(timeout.count()) + " ns");
  }
  return got;
}

}  // namespace beat
