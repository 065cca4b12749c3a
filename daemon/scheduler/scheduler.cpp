#include "daemon/scheduler/scheduler.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <climits>
#include <stdexcept>

#include "shared/ring.hpp"  // cpu_relax, kSpinYieldInterval

namespace beat::sched {

namespace {

// Parked workers poll this often when the kernel lacks futex_waitv.
constexpr std::int64_t kFallbackParkNs = 2'000'000;

}  // namespace

void spin_pause(std::int64_t now, std::int64_t& next_yield) noexcept {
  if (now >= next_yield) {
    std::this_thread::yield();
    next_yield = now + kSpinYieldNs;
  } else {
    cpu_relax();
  }
}

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The policy's view of the workers: racy reads of their deques and states.
class Scheduler::Loads final : public LoadView {
 public:
  explicit Loads(const Scheduler& s) : s_(s) {}
  std::uint32_t workers() const noexcept override { return s_.worker_count(); }
  std::uint32_t queue_size(std::uint32_t w) const noexcept override {
    return s_.workers_[w]->queue_size();
  }
  WorkerState state(std::uint32_t w) const noexcept override { return s_.workers_[w]->state(); }

 private:
  const Scheduler& s_;
};

Scheduler::Scheduler(const SchedulerOptions& options, const Topology& topology, WorkSource* source)
    : options_(options),
      topology_(topology),
      source_(source),
      idle_spin_ns_(std::int64_t{options.idle_spin_us} * 1000),
      heartbeat_ns_(std::int64_t{options.heartbeat_us} * 1000) {
  const std::uint32_t n = options.workers != 0 ? options.workers : topology.default_worker_count();
  const auto& cores = topology.cores();
  std::vector<std::uint32_t> pus;
  for (std::uint32_t i = 0; i < n; ++i) {
    const CoreSlot& slot = cores[i % cores.size()];
    placements_.push_back({i, slot.core_index, slot.os_pu, false});
    pus.push_back(slot.os_pu);
  }
  pus_ = std::move(pus);
  set_steal_policy(options.policy, options.steal_attempts_per_level);
  loads_ = std::make_unique<Loads>(*this);
  workers_ = std::make_unique<Worker*[]>(n);
}

void Scheduler::set_steal_policy(StealPolicyKind kind, std::uint32_t attempts_per_level) {
  policies_.push_back(make_steal_policy(kind, topology_, pus_, attempts_per_level));
  // Release: the policy is built before any worker can load the pointer.
  policy_.store(policies_.back().get(), std::memory_order_release);
}

Scheduler::~Scheduler() {
  stop();
  // Workers are destroyed only when no thread can steal from them; their
  // statistics stay readable between stop() and here.
  for (std::uint32_t i = 0; i < worker_count(); ++i) delete workers_[i];
}

Status Scheduler::start() {
  if (started_) return Status::ok();
  started_ = true;
  const std::uint32_t n = worker_count();
  if (n > topology_.cores().size())
    spdlog::warn("{} workers on {} allowed cores: workers share cores", n,
                 topology_.cores().size());
  for (std::uint32_t i = 0; i < n; ++i) {
    threads_.emplace_back([this, i] { worker_main(i); });
    if (options_.pin) {
      const CoreSlot slot{placements_[i].core, placements_[i].os_pu};
      if (Status s = topology_.pin(threads_.back().native_handle(), slot); !s) {
        spdlog::warn("worker {}: {}; running unpinned", i, s.message());
      } else {
        placements_[i].pinned = true;
      }
    }
  }
  // Gate 1: every thread is pinned; each now builds its Worker on its own
  // core (first touch puts its frames and deque on the local NUMA node).
  // Release: the placements written above are visible to the workers.
  go_.store(1, std::memory_order_release);
  go_.notify_all();
  // Acquire: pairs with each worker's release increment after it wrote its
  // workers_ slot (a release sequence of RMWs).
  for (std::uint32_t r = ready_.load(std::memory_order_acquire); r != n;
       r = ready_.load(std::memory_order_acquire))
    ready_.wait(r, std::memory_order_acquire);
  // Gate 2: every slot is written; workers may look at each other.
  go_.store(2, std::memory_order_release);
  go_.notify_all();
  return Status::ok();
}

void Scheduler::stop() {
  if (stop_.exchange(true, std::memory_order_acq_rel)) return;
  if (!started_) return;
  wake_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  // Roots injected but never taken: fail them, so no run() caller waits
  // forever.
  std::lock_guard lock(injection_mutex_);
  for (Job* job : injection_) {
    job->fail_with(std::make_exception_ptr(std::runtime_error("beat scheduler: stopped")));
    job->done.store(1, std::memory_order_release);
  }
  injection_.clear();
  injected_.store(0, std::memory_order_relaxed);
  root_done();
}

void Scheduler::worker_main(std::uint32_t index) {
  for (std::uint32_t g = go_.load(std::memory_order_acquire); g < 1;
       g = go_.load(std::memory_order_acquire))
    go_.wait(g, std::memory_order_acquire);
  Worker* self = new Worker(*this, index);
  workers_[index] = self;
  ready_.fetch_add(1, std::memory_order_release);
  ready_.notify_all();
  // Acquire: pairs with start()'s release of gate 2; every slot is written.
  for (std::uint32_t g = go_.load(std::memory_order_acquire); g < 2;
       g = go_.load(std::memory_order_acquire))
    go_.wait(g, std::memory_order_acquire);

  Worker& w = *self;
  std::int64_t now = now_ns();
  w.last_now_ns_ = now;
  w.searching_ = true;
  spinners_.fetch_add(1, std::memory_order_seq_cst);
  std::int64_t idle_since = now;
  std::int64_t next_yield = now + kSpinYieldNs;
  // Relaxed: stop only ends the loop; work published before it was found
  // by the loads that matter (acquire in the deques and rings).
  while (!stop_.load(std::memory_order_relaxed)) {
    if (source_ != nullptr) source_->on_loop(w);
    Job* job = nullptr;
    bool ran = false;
    if (source_ != nullptr && source_->poll(w)) {  // calls w.begin_work() itself
      ran = true;
    } else if ((job = take_injected()) != nullptr) {
      w.run_taken(job);
      root_done();
      ran = true;
    } else if ((job = w.try_steal()) != nullptr) {
      w.run_taken(job);
      ran = true;
    }
    now = now_ns();
    w.last_now_ns_ = now;
    if (ran) {
      w.end_work(now);
      idle_since = now;
      next_yield = now + kSpinYieldNs;
      continue;
    }
    w.raise_heartbeat(now);
    if (now - idle_since < idle_spin_ns_.load(std::memory_order_relaxed)) {
      spin_pause(now, next_yield);
      continue;
    }
    park(w);
    now = now_ns();
    w.last_now_ns_ = now;
    w.enter_state(WorkerState::kIdle, now);
    idle_since = now;
    next_yield = now + kSpinYieldNs;
  }
  if (w.searching_) spinners_.fetch_sub(1, std::memory_order_seq_cst);
  w.searching_ = false;
  w.enter_state(WorkerState::kIdle, now_ns());
}

bool Scheduler::work_visible() const noexcept {
  if (stop_.load(std::memory_order_acquire)) return true;
  if (injected_.load(std::memory_order_relaxed) != 0) return true;
  for (std::uint32_t i = 0; i < worker_count(); ++i)
    if (workers_[i]->queue_size() != 0) return true;
  return false;
}

void Scheduler::park(Worker& w) {
  FutexWaitItem items[kMaxFutexWaitItems];
  int count = 0;
  // Snapshot before the re-check: a wake after it makes the wait return.
  items[count++] = {&wake_seq_, wake_seq_.load(std::memory_order_acquire)};
  // seq_cst RMWs then a fence: the parker's half of the store-buffering
  // pair (header comment).
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  spinners_.fetch_sub(1, std::memory_order_seq_cst);
  bool work = false;
  if (source_ != nullptr) {
    const int added = source_->arm_park(w, items + count, kMaxFutexWaitItems - count);
    if (added < 0)
      work = true;
    else
      count += added;
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  work = work || work_visible();
  if (!work) {
    w.enter_state(WorkerState::kParked, now_ns());
    auto& parks = w.stats_.parks;
    parks.store(parks.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (source_ != nullptr) source_->before_sleep(w);
    if (futex_wait_any(items, count, -1) == -2) {
      struct timespec ts {
        0, kFallbackParkNs
      };
      futex_wait(&wake_seq_, items[0].expected, &ts);
    }
    if (source_ != nullptr) source_->after_sleep(w);
  }
  spinners_.fetch_add(1, std::memory_order_seq_cst);
  sleepers_.fetch_sub(1, std::memory_order_seq_cst);
  if (source_ != nullptr) source_->disarm_park(w);
}

void Scheduler::root_done() noexcept {
  // The run() caller sleeps on roots_done_ (its job may be gone: only the
  // scheduler's word is touched). Release: orders after the job's done.
  roots_done_.fetch_add(1, std::memory_order_release);
  futex_wake(&roots_done_, INT_MAX);
}

void Scheduler::inject(Job* job) {
  {
    std::lock_guard lock(injection_mutex_);
    // Under the mutex: stop() drains the queue under it after setting
    // stop_, so a root is either refused here or failed by stop().
    if (stop_.load(std::memory_order_relaxed))
      throw std::logic_error("beat scheduler: run() after stop()");
    injection_.push_back(job);
    // Relaxed: a hint read by idle workers; the job itself is handed over
    // under the mutex.
    injected_.store(static_cast<std::uint32_t>(injection_.size()), std::memory_order_relaxed);
  }
  wake_if_unattended();
}

Job* Scheduler::take_injected() noexcept {
  if (injected_.load(std::memory_order_relaxed) == 0) return nullptr;
  std::lock_guard lock(injection_mutex_);
  if (injection_.empty()) return nullptr;
  Job* job = injection_.front();
  injection_.pop_front();
  injected_.store(static_cast<std::uint32_t>(injection_.size()), std::memory_order_relaxed);
  return job;
}

void Scheduler::wait_root(Job& job) noexcept {
  for (;;) {
    const std::uint32_t seq = roots_done_.load(std::memory_order_acquire);
    // SYNC POINT READ: pairs with run_job's release store of done.
    if (job.done.load(std::memory_order_acquire) != 0) return;
    futex_wait(&roots_done_, seq);
  }
}

void Scheduler::wake_if_unattended() noexcept {
  // The pusher's half of the store-buffering pair: our push (a release
  // store of the deque's bottom, or the injection under its mutex) is
  // ordered before these loads.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_relaxed) != 0 &&
      spinners_.load(std::memory_order_relaxed) == 0)
    wake_one();
}

void Scheduler::wake_one() noexcept {
  // Release: pairs with the parker's acquire snapshot of wake_seq_.
  wake_seq_.fetch_add(1, std::memory_order_release);
  futex_wake(&wake_seq_, 1);
}

void Scheduler::wake_all() noexcept {
  wake_seq_.fetch_add(1, std::memory_order_release);
  futex_wake(&wake_seq_, INT_MAX);
}

void Scheduler::worker_times(std::uint32_t i, std::uint64_t& busy, std::uint64_t& idle,
                             std::uint64_t& parked) const noexcept {
  busy = idle = parked = 0;
  if (workers_[i] == nullptr) return;  // not started
  const WorkerStats& s = workers_[i]->stats();
  busy = s.busy_ns.load(std::memory_order_relaxed);
  idle = s.idle_ns.load(std::memory_order_relaxed);
  parked = s.parked_ns.load(std::memory_order_relaxed);
  const auto state = static_cast<WorkerState>(s.state.load(std::memory_order_relaxed));
  const std::int64_t since = s.state_since_ns.load(std::memory_order_relaxed);
  const std::int64_t now = now_ns();
  const auto running = static_cast<std::uint64_t>(now > since ? now - since : 0);
  switch (state) {
    case WorkerState::kBusy: busy += running; break;
    case WorkerState::kIdle: idle += running; break;
    case WorkerState::kParked: parked += running; break;
  }
}

SchedulerStats Scheduler::stats() const noexcept {
  SchedulerStats t;
  for (std::uint32_t i = 0; i < worker_count(); ++i) {
    if (workers_[i] == nullptr) continue;  // not started
    const WorkerStats& s = workers_[i]->stats();
    t.jobs_run += s.jobs_run.load(std::memory_order_relaxed);
    t.spawns += s.spawns.load(std::memory_order_relaxed);
    t.inline_runs += s.inline_runs.load(std::memory_order_relaxed);
    t.promotions += s.promotions.load(std::memory_order_relaxed);
    t.steal_attempts += s.steal_attempts.load(std::memory_order_relaxed);
    t.steals += s.steals.load(std::memory_order_relaxed);
    t.parks += s.parks.load(std::memory_order_relaxed);
    std::uint64_t b, d, p;
    worker_times(i, b, d, p);
    t.busy_ns += b;
    t.idle_ns += d;
    t.parked_ns += p;
  }
  return t;
}

}  // namespace beat::sched
