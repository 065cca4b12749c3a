#include "daemon/client_metrics.hpp"

#include <algorithm>

#include "daemon/client_session.hpp"

namespace beat {

namespace {

// Adds a session's counters, and (for a live one) its gauges, to `row`.
// Relaxed loads of counters written by workers and of client-written
// header words: figures for display, possibly a few tasks old. The
// client-written values are untrusted and clamped to the ring and arena
// sizes, as STATS does.
void add_session(ClientMetrics::Row& row, const ClientSession& s, bool live) {
  row.submitted += s.tasks_taken_.load(std::memory_order_relaxed);
  row.completed += s.tasks_completed_.load(std::memory_order_relaxed);
  row.failed += s.tasks_failed_.load(std::memory_order_relaxed);
  if (!live) return;
  const SegmentView& v = s.view();
  ++row.sessions;
  row.sq_depth += s.sq_depth();
  row.cq_depth += s.cq_depth();
  row.arena_bytes += v.layout.arena_bytes;
  row.arena_used_bytes +=
      std::min(v.header->arena_used_bytes.load(std::memory_order_relaxed), v.layout.arena_bytes);
}

}  // namespace

std::string ClientMetrics::label_for(const std::string& name) {
  const std::string label = name.empty() ? kUnnamedLabel : name;
  if (totals_.contains(label)) return label;
  const std::size_t named = totals_.size() - (totals_.contains(kOtherLabel) ? 1 : 0);
  if (label == kOtherLabel || named >= kMaxNames) {
    totals_.try_emplace(kOtherLabel).first->second.client = kOtherLabel;
    return kOtherLabel;
  }
  totals_[label].client = label;
  return label;
}

void ClientMetrics::attach(const ClientSession& s) {
  const std::lock_guard lock(mutex_);
  live_.push_back({&s, label_for(s.client_name())});
}

void ClientMetrics::detach(const ClientSession& s) {
  const std::lock_guard lock(mutex_);
  const auto it =
      std::find_if(live_.begin(), live_.end(), [&s](const Live& l) { return l.session == &s; });
  if (it == live_.end()) return;
  add_session(totals_[it->label], s, false);
  live_.erase(it);
}

std::vector<ClientMetrics::Row> ClientMetrics::rows() const {
  const std::lock_guard lock(mutex_);
  std::map<std::string, Row> out = totals_;
  for (const Live& l : live_) add_session(out[l.label], *l.session, true);
  std::vector<Row> rows;
  rows.reserve(out.size());
  for (auto& [label, row] : out) rows.push_back(std::move(row));
  return rows;
}

}  // namespace beat
