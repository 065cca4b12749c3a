// ClientMetrics: per-client figures for the Prometheus scrape (task counts,
// queue depths, arena use), labelled by the name a client gave in HELLO.
//
// Cardinality is bounded: the first kMaxNames distinct names get a label
// each for the daemon's life; later names are counted under "(other)", and
// clients without a name under "(unnamed)". A session's counts stay with
// its label after it disconnects (its final counters are folded into the
// label's totals), so the counters never go backwards and a reconnecting
// client continues its own series.
//
// Thread-safety: attach/detach run on the control thread; rows() runs on
// the exposer's HTTP thread. One mutex guards the table. A session is
// detached before it is destroyed (after its grace period), and rows()
// reads live sessions only under the mutex, so it never sees a freed one.
// Nothing here is on the task path: the counters it reads are the
// session's own (ClientSession::tasks_*_).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace beat {

class ClientSession;

class ClientMetrics {
 public:
  static constexpr std::size_t kMaxNames = 32;
  static constexpr const char* kOtherLabel = "(other)";
  static constexpr const char* kUnnamedLabel = "(unnamed)";

  struct Row {
    std::string client;  // label value
    std::uint64_t submitted = 0;
    std::uint64_t completed = 0;
    std::uint64_t failed = 0;
    // Gauges: sums over the label's live sessions.
    std::uint64_t sessions = 0;
    std::uint64_t sq_depth = 0;
    std::uint64_t cq_depth = 0;
    std::uint64_t arena_bytes = 0;
    std::uint64_t arena_used_bytes = 0;
  };

  // Control thread: a session was published to the workers.
  void attach(const ClientSession& s);
  // Control thread: the session is about to be destroyed and no worker
  // touches it any more (grace period passed, or the pool stopped), so its
  // counters are final.
  void detach(const ClientSession& s);

  // Any thread: one row per label ever used, in label order.
  std::vector<Row> rows() const;

 private:
  struct Live {
    const ClientSession* session;
    std::string label;
  };
  std::string label_for(const std::string& name);  // REQUIRES mutex_

  mutable std::mutex mutex_;
  std::map<std::string, Row> totals_;  // GUARDED_BY(mutex_): detached sessions' counts
  std::vector<Live> live_;             // GUARDED_BY(mutex_)
};

}  // namespace beat
