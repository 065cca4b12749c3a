#include "daemon/metrics.hpp"

#include <string>

namespace beat {

namespace {

prometheus::MetricFamily family(const char* name, const char* help, prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  return f;
}

prometheus::ClientMetric per_worker(std::uint32_t worker, double value, bool counter) {
  prometheus::ClientMetric m;
  m.label.push_back({"worker", std::to_string(worker)});
  if (counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  return m;
}

prometheus::ClientMetric gauge(double value) {
  prometheus::ClientMetric m;
  m.gauge.value = value;
  return m;
}

}  // namespace

std::vector<prometheus::MetricFamily> PoolMetrics::Collect() const {
  using prometheus::MetricType;
  auto completed =
      family("beat_tasks_completed_total", "Tasks run to completion (any status) by each worker.",
             MetricType::Counter);
  auto failed =
      family("beat_tasks_failed_total", "Tasks that completed with a non-ok status, by worker.",
             MetricType::Counter);
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
  const sched::Scheduler& sched = pool_.scheduler();
  for (std::uint32_t i = 0; i < pool_.worker_count(); ++i) {
    const WorkerCounters& c = pool_.counters(i);
    const sched::WorkerStats& ws = sched.worker_stats(i);
    std::uint64_t busy_ns = 0, idle_ns = 0, parked_ns = 0;
    sched.worker_times(i, busy_ns, idle_ns, parked_ns);
    completed.metric.push_back(
        per_worker(i, static_cast<double>(c.tasks_run.load(std::memory_order_relaxed)), true));
    failed.metric.push_back(
        per_worker(i, static_cast<double>(c.tasks_failed.load(std::memory_order_relaxed)), true));
    busy.metric.push_back(per_worker(i, static_cast<double>(busy_ns) * 1e-9, true));
    idle.metric.push_back(per_worker(i, static_cast<double>(idle_ns) * 1e-9, true));
    parked.metric.push_back(per_worker(i, static_cast<double>(parked_ns) * 1e-9, true));
    parks.metric.push_back(
        per_worker(i, static_cast<double>(ws.parks.load(std::memory_order_relaxed)), true));
    spawns.metric.push_back(
        per_worker(i, static_cast<double>(ws.spawns.load(std::memory_order_relaxed)), true));
    inlined.metric.push_back(
        per_worker(i, static_cast<double>(ws.inline_runs.load(std::memory_order_relaxed)), true));
    attempts.metric.push_back(per_worker(
        i, static_cast<double>(ws.steal_attempts.load(std::memory_order_relaxed)), true));
    steals.metric.push_back(
        per_worker(i, static_cast<double>(ws.steals.load(std::memory_order_relaxed)), true));
  }
  auto workers = family("beat_workers", "Worker threads in the pool.", MetricType::Gauge);
  workers.metric.push_back(gauge(pool_.worker_count()));
  auto parked_now = family("beat_parked_workers", "Workers parked right now.", MetricType::Gauge);
  parked_now.metric.push_back(gauge(pool_.parked_workers()));
  auto clients =
      family("beat_connected_clients", "Clients with a live session.", MetricType::Gauge);
  clients.metric.push_back(gauge(pool_.active_clients()));
  return {completed, failed,   busy,   idle,    parked,     parks,  spawns,
          inlined,   attempts, steals, workers, parked_now, clients};
}

}  // namespace beat
