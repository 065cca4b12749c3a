// Where part 2 of beat-kernels-bench runs a workload (a list of task
// descriptors over a client's arena):
//
//   BeatdTarget      a private beatd child with N workers (BeatdPeer) and
//                    the one client session on it: run() submits every
//                    task, at most a CQ's worth in flight, and reaps every
//                    completion.
//   InProcessTarget  the same descriptors run by N threads of this process,
//                    each pinned to its own CPU, calling the kernels
//                    straight from a KernelRegistry with TaskContext(nullptr,
//                    ...) over another target's arena; the tasks are split
//                    into N contiguous equal shares. What the same work
//                    costs on this machine without rings and scheduler. Not
//                    a strict ceiling: a static split cannot move work off
//                    a vCPU that the host slows down, and stealing can.
//
// Both record the completions by tag, so one check serves both.
//
// Thread-safety: one thread (the benchmark's main thread) calls every
// method; InProcessTarget::run starts and joins its own threads.
#pragma once

#include <sched.h>

#include <cstdint>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "kernels/kernel_registry.hpp"
#include "perf/forkjoin/beatd_peer.hpp"

namespace beat::perf::kernels {

class Target {
 public:
  virtual ~Target() = default;

  // The id to put in a descriptor for the kernel called `name`. Throws
  // std::runtime_error when there is none.
  virtual std::uint32_t kernel(const char* name) = 0;
  // Runs `tasks` (tags 0..n-1) and records completions()[tag]. Throws
  // std::runtime_error when a submission or a wait fails.
  virtual void run(const std::vector<TaskDescriptor>& tasks) = 0;

  const std::vector<Completion>& completions() const noexcept { return completions_; }
  std::uint32_t threads() const noexcept { return threads_; }
  const std::string& name() const noexcept { return name_; }

  // The target's block of its arena: local offsets from the block's start.
  std::byte* at(std::uint64_t local) const noexcept { return block_.data + local; }
  std::uint64_t offset(std::uint64_t local) const noexcept { return block_.offset + local; }
  ArenaBlock range(std::uint64_t local, std::uint64_t length) const noexcept {
    return ArenaBlock{block_.offset + local, length, block_.data + local};
  }

 protected:
  Target(std::string name, std::uint32_t threads) : name_(std::move(name)), threads_(threads) {}

  std::string name_;
  std::uint32_t threads_;
  ArenaBlock block_;
  std::vector<Completion> completions_;
};

class BeatdTarget : public Target {
 public:
  // Starts `beatd` with `workers` workers on `cpus`, its client asking for
  // an arena that holds `block_bytes`, and allocates that block. `toml` is
  // appended to the daemon's config. Throws std::runtime_error naming what
  // failed.
  BeatdTarget(const std::string& beatd, std::uint32_t workers, const cpu_set_t& cpus,
              std::uint64_t block_bytes, const std::string& toml);

  std::uint32_t kernel(const char* name) override;
  void run(const std::vector<TaskDescriptor>& tasks) override;
  // Ends the session and the daemon; throws unless it exits cleanly.
  void stop() { peer_.stop(); }

  // The client's whole arena, as a kernel's TaskContext sees it.
  ArenaView arena() const noexcept { return arena_; }
  const ArenaBlock& block() const noexcept { return block_; }

 private:
  forkjoin::BeatdPeer peer_;
  ArenaView arena_;
};

class InProcessTarget : public Target {
 public:
  // Runs on `cpus` (one thread per CPU) over `arena_of`'s client arena,
  // whose block it shares. REQUIRES: arena_of outlives this target.
  InProcessTarget(const BeatdTarget& arena_of, const cpu_set_t& cpus);

  std::uint32_t kernel(const char* name) override;
  void run(const std::vector<TaskDescriptor>& tasks) override;

 private:
  KernelRegistry registry_;
  ArenaView arena_;
  std::vector<int> cpus_;
};

}  // namespace beat::perf::kernels
