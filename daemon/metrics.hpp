// PoolMetrics: beatd's Prometheus metrics, built at scrape time.
//
// The hot path writes only per-worker counters (WorkerCounters and the
// scheduler's WorkerStats: single writer, no RMW) and per-session counters
// it already owns the line of (ClientSession::tasks_completed_, once per
// completion flush); this Collectable sums them when Prometheus scrapes, so
// a task costs no shared atomic for metrics. Collect() runs on the
// exposer's HTTP thread and reads every counter with relaxed loads: values
// may be a few tasks old, never torn. The names and their meaning are
// listed in docs/metrics.md.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <chrono>
#include <vector>

#include "daemon/client_metrics.hpp"
#include "daemon/worker_pool.hpp"
#include "kernels/kernel_registry.hpp"

namespace beat {

// Label value of the per-kernel series for tasks naming an id the registry
// does not hold (kernel names cannot contain parentheses).
inline constexpr const char* kUnregisteredKernelLabel = "(unregistered)";

class PoolMetrics : public prometheus::Collectable {
 public:
  PoolMetrics(const WorkerPool& pool, const KernelRegistry& kernels, const ClientMetrics& clients)
      : pool_(pool), kernels_(kernels), clients_(clients) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const WorkerPool& pool_;
  const KernelRegistry& kernels_;
  const ClientMetrics& clients_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace beat
