// PoolMetrics: Prometheus view of the worker pool, built at scrape time.
//
// The hot path writes only per-worker counters (WorkerCounters, single
// writer, no RMW); this Collectable sums them when Prometheus scrapes, so a
// task costs no shared atomic for metrics. Collect() runs on the exposer's
// HTTP thread and reads the counters with relaxed loads (values may be a few
// tasks old, never torn).
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <vector>

#include "daemon/worker_pool.hpp"

namespace beat {

class PoolMetrics : public prometheus::Collectable {
 public:
  explicit PoolMetrics(const WorkerPool& pool) : pool_(pool) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const WorkerPool& pool_;
};

}  // namespace beat
