// ClientSession: the daemon's private state for one connected client, and
// the owner of that client's shared-memory segment.
//
// Everything the client can write lives in the segment and is untrusted; the
// fields below live in daemon memory and are the truth the daemon acts on
// (its own SQ head, CQ reservation and commit counters, credit accounting).
//
// Thread-safety / invariants:
//  1. Intake fields (sq_head_, cq_taken_) are guarded by intake_claim_: a
//     worker that wins the claim (exchange acquire) is the only SQ consumer
//     until it releases it (store release), which publishes its updates to
//     the next claimer.
//  2. cq_taken_ - client's cq.head <= cq_entries whenever the client is
//     honest; intake takes only tasks it has CQ credit for, so a completion
//     reservation never overruns the ring and posting never waits on the
//     client.
//  3. cq_reserve_/cq_commit_ order completion commits among workers (ring
//     rule 2); the segment's cq.tail is only a mirror of cq_commit_, so a
//     client scribbling on it cannot stall a worker.
//  4. The segment stays mapped until the worker pool's grace period after
//     retire() has passed: no worker holds a pointer to the session then.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <boost/interprocess/mapped_region.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "shared/segment_layout.hpp"
#include "shared/status.hpp"

namespace beat {

struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

// The segment is a sealed memfd mapped with Boost.Interprocess's
// mapped_region, not a named shared_memory_object: the client must hold a
// writable descriptor to map it, and with a named tmpfs file that
// descriptor could ftruncate() the segment under the daemon, whose next
// access would die of SIGBUS. A memfd sealed against shrinking and growing
// (F_SEAL_SHRINK | F_SEAL_GROW, then F_SEAL_SEAL) cannot change size, its
// pages are allocated up front (a page tmpfs had no room for would also
// fault), and it has no name anyone could open: only the descriptor passed
// over the socket (and this process's own /proc/<pid>/fd, which ptrace
// rules restrict to the daemon's user) reaches it. It is freed when the
// daemon unmaps it and the client's last mapping and descriptor go.
class ClientSession {
 public:
  // Creates the sealed segment (a memfd named `segment_name`, as /proc and
  // the logs show it), maps it and initialises its header.
  // kResourceExhausted when the memory cannot be reserved.
  static Result<std::unique_ptr<ClientSession>> create(
      const std::string& segment_name, const SegmentLayout& layout, std::uint64_t daemon_instance,
      std::uint32_t client_id, const PeerCredentials& peer, std::string client_name);
  ~ClientSession();  // unmaps the segment and closes its descriptor
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  // Descriptor of the segment, passed to the client with SCM_RIGHTS.
  int segment_fd() const noexcept;
  const std::string& segment_name() const noexcept { return segment_name_; }
  const std::string& client_name() const noexcept { return client_name_; }
  const PeerCredentials& peer() const noexcept { return peer_; }
  std::uint32_t client_id() const noexcept { return client_id_; }
  const SegmentView& view() const noexcept { return view_; }
  // When the session was created (steady clock ns): no submit stamp of
  // its tasks can be older.
  std::uint64_t created_ns() const noexcept { return created_ns_; }

  // ---- intake (worker holding the claim) ----
  std::atomic<bool> intake_claim_{false};
  std::uint32_t sq_head_ = 0;   // GUARDED_BY(intake_claim_): next SQ index to consume
  std::uint32_t cq_taken_ = 0;  // GUARDED_BY(intake_claim_): tasks taken that owe a completion
  // GUARDED_BY(intake_claim_): the client's cq.head as last loaded. Intake
  // reloads it only when the cached credit is short, so the client's head
  // line does not bounce to a worker on every chunk.
  std::uint32_t cq_head_cache_ = 0;
  // Copy of sq_head_ for unclaimed emptiness checks and drain progress.
  // Written by the claimer (release), read by anyone (acquire).
  std::atomic<std::uint32_t> sq_head_mirror_{0};
  // Copy of cq_taken_ for unclaimed credit checks and drain progress:
  // in flight = cq_taken_mirror_ - cq_commit_. Stored (relaxed) before
  // sq_head_mirror_'s release, so a reader that acquires the head mirror
  // sees at least the matching value.
  std::atomic<std::uint32_t> cq_taken_mirror_{0};
  // Set by the claimer when the CQ had no room for more completions (it then
  // also set the segment's cq_space.needs_wakeup); cleared by the next
  // successful intake. Relaxed: a hint for intake_pass and park.
  std::atomic<bool> cq_stalled_{false};
  // True while a chunk's batch of ordered tasks (kTaskFlagOrdered) has been
  // taken and not yet finished: intake takes no further ordered task until
  // then. Set by the claimer (relaxed: later claimers read it after the
  // claim's acquire); cleared with release by the worker that ran the
  // batch, after posting its completions; read with acquire.
  std::atomic<bool> ordered_inflight_{false};

  // ---- completion posting (any worker) ----
  alignas(kCacheLine) std::atomic<std::uint32_t> cq_reserve_{0};
  alignas(kCacheLine) std::atomic<std::uint32_t> cq_commit_{0};
  // Completions posted over the session's life, and those with a non-ok
  // status (relaxed RMWs by the poster, once per flush, on the line its
  // commit just took; read by STATS and the metrics scrape).
  std::atomic<std::uint64_t> tasks_completed_{0};
  std::atomic<std::uint64_t> tasks_failed_{0};

  // ---- lifecycle and counters ----
  // Tasks taken over the session's life (includes in-flight ones). Single
  // writer (the claimer: relaxed load + store), read by STATS.
  alignas(kCacheLine) std::atomic<std::uint64_t> tasks_taken_{0};
  std::atomic<bool> closing_{false};  // control thread sets; workers drop its tasks
  std::atomic<bool> broken_{false};   // a worker found the rings corrupt
  // SQ index below which tasks were accepted when draining began, and
  // whether it is set: the control thread stores drain_until_ (relaxed),
  // then draining_ (release); workers acquire draining_ before reading it.
  std::atomic<std::uint32_t> drain_until_{0};
  std::atomic<bool> draining_{false};

 private:
  ClientSession() = default;

 public:
  // Tasks taken but not yet completed (display; exact when quiescent).
  std::uint32_t inflight() const noexcept {
    return cq_taken_mirror_.load(std::memory_order_acquire) -
           cq_commit_.load(std::memory_order_acquire);
  }
  // Entries waiting in the rings (display, STATS and metrics): submitted
  // and not yet taken; posted and not yet reaped. Relaxed reads, one of
  // them a client-written index: a value beyond the ring's size is the
  // client's corruption and reads as 0.
  std::uint32_t sq_depth() const noexcept {
    const std::uint32_t d = view_.header->sq.tail.value.load(std::memory_order_relaxed) -
                            sq_head_mirror_.load(std::memory_order_relaxed);
    return d <= view_.layout.sq_entries ? d : 0;
  }
  std::uint32_t cq_depth() const noexcept {
    const std::uint32_t d = cq_commit_.load(std::memory_order_relaxed) -
                            view_.header->cq.head.value.load(std::memory_order_relaxed);
    return d <= view_.layout.cq_entries ? d : 0;
  }

 private:
  std::string segment_name_;
  std::string client_name_;
  PeerCredentials peer_{};
  std::uint32_t client_id_ = 0;
  std::uint64_t created_ns_ = 0;
  int fd_ = -1;  // the memfd
  boost::interprocess::mapped_region region_;
  SegmentView view_{};
};

}  // namespace beat
