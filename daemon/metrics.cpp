#include "daemon/metrics.hpp"

#include <array>
#include <limits>
#include <string>

namespace beat {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily family(const char* name, const char* help, MetricType type) {
  MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  return f;
}

double relaxed(const std::atomic<std::uint64_t>& v) {
  return static_cast<double>(v.load(std::memory_order_relaxed));
}

ClientMetric labelled(std::initializer_list<ClientMetric::Label> labels) {
  ClientMetric m;
  m.label.assign(labels);
  return m;
}

void add_counter(MetricFamily& f, std::initializer_list<ClientMetric::Label> labels, double v) {
  ClientMetric m = labelled(labels);
  m.counter.value = v;
  f.metric.push_back(std::move(m));
}

void add_gauge(MetricFamily& f, std::initializer_list<ClientMetric::Label> labels, double v) {
  ClientMetric m = labelled(labels);
  m.gauge.value = v;
  f.metric.push_back(std::move(m));
}

// A histogram from per-bucket (non-cumulative) counts and upper bounds; the
// count is the sum of the buckets, so the +Inf bucket always equals it.
template <std::size_t N>
MetricFamily histogram(const char* name, const char* help,
                       const std::array<std::uint64_t, N>& counts,
                       const std::array<double, N - 1>& bounds, double sum) {
  MetricFamily f = family(name, help, MetricType::Histogram);
  ClientMetric m;
  std::uint64_t cumulative = 0;
  for (std::size_t b = 0; b < N; ++b) {
    cumulative += counts[b];
    m.histogram.bucket.push_back(
        {cumulative, b + 1 < N ? bounds[b] : std::numeric_limits<double>::infinity()});
  }
  m.histogram.sample_count = cumulative;
  m.histogram.sample_sum = sum;
  f.metric.push_back(std::move(m));
  return f;
}

std::array<double, kTimeBuckets - 1> time_bounds_seconds() {
  std::array<double, kTimeBuckets - 1> b{};
  for (std::size_t i = 0; i < b.size(); ++i)
    b[i] = static_cast<double>(time_bucket_bound_ns(i)) / 1e9;  // 4e-06, not 4.000000000000001e-06
  return b;
}

}  // namespace

std::vector<MetricFamily> PoolMetrics::Collect() const {
  std::vector<MetricFamily> out;
  const sched::Scheduler& sched = pool_.scheduler();
  const std::uint32_t workers = pool_.worker_count();

  // ---- tasks by kernel (per-worker slots summed) ----
  auto submitted =
      family("beat_tasks_submitted_total", "Tasks taken from client submission rings, by kernel.",
             MetricType::Counter);
  auto completed = family("beat_tasks_completed_total",
                          "Task completions posted (any status), by kernel.", MetricType::Counter);
  auto failed =
      family("beat_tasks_failed_total", "Task completions posted with a non-ok status, by kernel.",
             MetricType::Counter);
  const std::uint32_t registered = kernels_.size();
  const auto add_kernel = [&](std::uint32_t slot, const std::string& label) {
    double s = 0, c = 0, f = 0;
    for (std::uint32_t w = 0; w < workers; ++w) {
      const WorkerCounters::KernelCounts& k = pool_.counters(w).kernels[slot];
      s += relaxed(k.submitted);
      c += relaxed(k.completed);
      f += relaxed(k.failed);
    }
    add_counter(submitted, {{"kernel", label}}, s);
    add_counter(completed, {{"kernel", label}}, c);
    add_counter(failed, {{"kernel", label}}, f);
  };
  for (std::uint32_t id = 0; id < registered; ++id) add_kernel(id, kernels_.at(id).name);
  add_kernel(kKernelSlots - 1, kUnregisteredKernelLabel);
  out.push_back(std::move(submitted));
  out.push_back(std::move(completed));
  out.push_back(std::move(failed));

  // ---- per client name (bounded: ClientMetrics) ----
  auto c_submitted =
      family("beat_client_tasks_submitted_total",
             "Tasks taken from the submission rings of clients with this name (at most 32 names; "
             "the rest under \"(other)\").",
             MetricType::Counter);
  auto c_completed =
      family("beat_client_tasks_completed_total",
             "Task completions posted to clients with this name.", MetricType::Counter);
  auto c_failed = family("beat_client_tasks_failed_total",
                         "Task completions with a non-ok status posted to clients with this name.",
                         MetricType::Counter);
  auto depth = family("beat_queue_depth",
                      "Entries waiting in the rings of connected clients with this name: "
                      "queue=\"submission\" (submitted, not yet taken by a worker), "
                      "queue=\"completion\" (posted, not yet reaped by the client).",
                      MetricType::Gauge);
  auto arena =
      family("beat_arena_bytes", "Arena bytes mapped for connected clients with this name.",
             MetricType::Gauge);
  auto arena_used =
      family("beat_arena_used_bytes",
             "Arena bytes the client library reports allocated, for connected clients with this "
             "name (client-reported, capped at beat_arena_bytes).",
             MetricType::Gauge);
  for (const ClientMetrics::Row& r : clients_.rows()) {
    add_counter(c_submitted, {{"client", r.client}}, static_cast<double>(r.submitted));
    add_counter(c_completed, {{"client", r.client}}, static_cast<double>(r.completed));
    add_counter(c_failed, {{"client", r.client}}, static_cast<double>(r.failed));
    add_gauge(depth, {{"client", r.client}, {"queue", "submission"}},
              static_cast<double>(r.sq_depth));
    add_gauge(depth, {{"client", r.client}, {"queue", "completion"}},
              static_cast<double>(r.cq_depth));
    add_gauge(arena, {{"client", r.client}}, static_cast<double>(r.arena_bytes));
    add_gauge(arena_used, {{"client", r.client}}, static_cast<double>(r.arena_used_bytes));
  }
  for (auto* f : {&c_submitted, &c_completed, &c_failed, &depth, &arena, &arena_used})
    out.push_back(std::move(*f));

  // ---- per worker ----
  auto w_tasks =
      family("beat_worker_tasks_completed_total",
             "Client tasks each worker ran to completion (any status).", MetricType::Counter);
  auto busy =
      family("beat_worker_busy_seconds_total",
             "Seconds each worker spent running tasks and stolen work.", MetricType::Counter);
  auto idle = family("beat_worker_idle_seconds_total",
                     "Seconds each worker spent searching for work (spinning, stealing).",
                     MetricType::Counter);
  auto parked = family("beat_worker_parked_seconds_total",
                       "Seconds each worker spent parked on its futex.", MetricType::Counter);
  auto parks = family("beat_worker_parks_total", "Times each worker parked.", MetricType::Counter);
  auto spawns = family("beat_spawns_total",
                       "Tasks each worker spawned or ran as loop iterations (forks, parallel_for "
                       "iterations, client tasks; not the forks inline subtrees ran as plain "
                       "calls): the denominator of the steal rate.",
                       MetricType::Counter);
  auto inlined = family("beat_inline_subtrees_total",
                        "Fork-join subtrees each worker ran inline, their forks as plain calls "
                        "(not in beat_spawns_total unless the polling clone counted them).",
                        MetricType::Counter);
  auto attempts = family("beat_steal_attempts_total", "Deques each worker probed for work.",
                         MetricType::Counter);
  auto steals = family("beat_steals_total", "Jobs each worker took from another worker's deque.",
                       MetricType::Counter);
  std::array<std::uint64_t, kTimeBuckets> latency{}, formation{};
  std::array<std::uint64_t, kBatchSizeBuckets.size() + 1> batch_sizes{};  // + empty +Inf
  std::uint64_t latency_ns = 0, formation_ns = 0, batches = 0, batched_tasks = 0, corrected = 0;
  std::uint64_t policy_ns = 0, policy_samples = 0;
  for (std::uint32_t i = 0; i < workers; ++i) {
    const WorkerCounters& c = pool_.counters(i);
    const sched::WorkerStats& ws = sched.worker_stats(i);
    std::uint64_t busy_ns = 0, idle_ns = 0, parked_ns = 0;
    sched.worker_times(i, busy_ns, idle_ns, parked_ns);
    const ClientMetric::Label worker{"worker", std::to_string(i)};
    add_counter(w_tasks, {worker}, relaxed(c.tasks_run));
    add_counter(busy, {worker}, static_cast<double>(busy_ns) * 1e-9);
    add_counter(idle, {worker}, static_cast<double>(idle_ns) * 1e-9);
    add_counter(parked, {worker}, static_cast<double>(parked_ns) * 1e-9);
    add_counter(parks, {worker}, relaxed(ws.parks));
    add_counter(spawns, {worker}, relaxed(ws.spawns));
    add_counter(inlined, {worker}, relaxed(ws.inline_runs));
    add_counter(attempts, {worker}, relaxed(ws.steal_attempts));
    add_counter(steals, {worker}, relaxed(ws.steals));
    for (std::size_t b = 0; b < kTimeBuckets; ++b) {
      latency[b] += c.latency[b].load(std::memory_order_relaxed);
      formation[b] += c.formation[b].load(std::memory_order_relaxed);
    }
    for (std::size_t b = 0; b < kBatchSizeBuckets.size(); ++b)
      batch_sizes[b] += c.batch_sizes[b].load(std::memory_order_relaxed);
    latency_ns += c.latency_sum_ns.load(std::memory_order_relaxed);
    formation_ns += c.formation_sum_ns.load(std::memory_order_relaxed);
    batches += c.batches.load(std::memory_order_relaxed);
    batched_tasks += c.tasks_grouped.load(std::memory_order_relaxed) +
                     c.tasks_alone.load(std::memory_order_relaxed);
    corrected += c.fingerprints_corrected.load(std::memory_order_relaxed);
    policy_ns += ws.policy_ns.load(std::memory_order_relaxed);
    policy_samples += ws.policy_samples.load(std::memory_order_relaxed);
  }
  for (auto* f : {&w_tasks, &busy, &idle, &parked, &parks, &spawns, &inlined, &attempts, &steals})
    out.push_back(std::move(*f));

  // ---- distributions ----
  static const std::array<double, kTimeBuckets - 1> time_bounds = time_bounds_seconds();
  out.push_back(histogram("beat_task_latency_seconds",
                          "Seconds from a task's submission (the client library's stamp) to its "
                          "completion being posted.",
                          latency, time_bounds, static_cast<double>(latency_ns) * 1e-9));
  out.push_back(histogram("beat_batch_formation_seconds",
                          "Seconds to group one intake chunk into batches (every 8th chunk).",
                          formation, time_bounds, static_cast<double>(formation_ns) * 1e-9));
  std::array<double, kBatchSizeBuckets.size()> size_bounds{};
  for (std::size_t b = 0; b < size_bounds.size(); ++b) size_bounds[b] = kBatchSizeBuckets[b];
  out.push_back(histogram("beat_batch_size", "Tasks per batch one worker ran back to back.",
                          batch_sizes, size_bounds, static_cast<double>(batched_tasks)));
  auto batches_f =
      family("beat_batches_total", "Batches formed from intake chunks.", MetricType::Counter);
  add_counter(batches_f, {}, static_cast<double>(batches));
  out.push_back(std::move(batches_f));
  auto corrected_f = family("beat_fingerprints_corrected_total",
                            "Task fingerprints the daemon recomputed because the client's "
                            "disagreed with the descriptor.",
                            MetricType::Counter);
  add_counter(corrected_f, {}, static_cast<double>(corrected));
  out.push_back(std::move(corrected_f));
  auto policy = family("beat_steal_policy_decision_seconds",
                       "Seconds the steal policy took to pick a victim, sampled (the first "
                       "decision of every 64th steal round; includes one clock read).",
                       MetricType::Summary);
  ClientMetric p;
  p.summary.sample_count = policy_samples;
  p.summary.sample_sum = static_cast<double>(policy_ns) * 1e-9;
  policy.metric.push_back(std::move(p));
  out.push_back(std::move(policy));

  // ---- gauges ----
  auto workers_f = family("beat_workers", "Worker threads in the pool.", MetricType::Gauge);
  add_gauge(workers_f, {}, workers);
  auto parked_now = family("beat_parked_workers", "Workers parked right now.", MetricType::Gauge);
  add_gauge(parked_now, {}, pool_.parked_workers());
  auto clients =
      family("beat_connected_clients", "Clients with a live session.", MetricType::Gauge);
  add_gauge(clients, {}, pool_.active_clients());
  auto uptime = family("beat_uptime_seconds", "Seconds since beatd started.", MetricType::Gauge);
  add_gauge(uptime, {},
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count());
  auto info =
      family("beat_build_info", "Always 1; the version label is beatd's.", MetricType::Gauge);
  add_gauge(info, {{"version", BEAT_VERSION}}, 1);
  for (auto* f : {&workers_f, &parked_now, &clients, &uptime, &info}) out.push_back(std::move(*f));
  return out;
}

}  // namespace beat
