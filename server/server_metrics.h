#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <vector>

#include "absl/status/status.h"
#include "engine/scheduler/scheduler.h"
#include "server/metrics_registry.h"

namespace kvserve::server {

// Histogram bounds in seconds. TTFT: vLLM's list with 2 s added (a common SLO); ITL: fine steps
// from 1 ms, since a small model decodes a token in a few ms (vLLM's 10 ms floor is too coarse).
std::vector<double> DefaultTtftBuckets();
std::vector<double> DefaultItlBuckets();

// kvserve's Prometheus metrics: vLLM's names and semantics with a kvserve_ prefix, plus the KV
// policies' own (DESIGN.md § Contracts). Observers are called from the engine thread's output
// callbacks and the gRPC threads; everything here is thread-safe and never blocks for long.
class ServerMetrics {
 public:
  // Empty bucket lists take the defaults.
  ServerMetrics(metrics::Registry& registry, std::vector<double> ttft_buckets,
                std::vector<double> itl_buckets);

  // A request's first token, `seconds` after it arrived; its prompt has been processed.
  void ObserveFirstToken(double seconds, int prompt_tokens);
  // The time between two consecutive outputs of one request carrying tokens.
  void ObserveInterToken(double seconds);
  void CountGeneratedTokens(int tokens);
  // A request's last output, `e2e_seconds` after it arrived.
  void ObserveFinished(const SequenceOutput& last, double e2e_seconds);
  // A request refused before it reached the engine or by the engine's admission; the code picks
  // the reason label (RESOURCE_EXHAUSTED: queue_full, UNAVAILABLE: unavailable, else invalid).
  void CountRejected(absl::StatusCode code);
  // Gauges and the preemption counter from the scheduler (called at scrape time).
  void Refresh(const SchedulerStatus& status);

 private:
  static constexpr int kFinishReasons = 6;  // FinishReason's values

  metrics::Histogram& ttft_;
  metrics::Histogram& itl_;
  metrics::Histogram& e2e_;
  metrics::Histogram& queue_time_;
  metrics::Histogram& prefill_time_;
  metrics::Histogram& decode_time_;
  metrics::Histogram& prompt_tokens_;
  metrics::Histogram& generation_tokens_;
  metrics::Gauge& running_;
  metrics::Gauge& waiting_;
  metrics::Gauge& kv_usage_;
  metrics::Gauge& kv_host_usage_;
  metrics::Gauge& kv_kept_ratio_;
  metrics::Counter& prompt_tokens_total_;
  metrics::Counter& generation_tokens_total_;
  std::array<metrics::Counter*, kFinishReasons> success_;
  metrics::Counter& preemptions_;
  metrics::Counter& rejected_queue_full_;
  metrics::Counter& rejected_invalid_;
  metrics::Counter& rejected_unavailable_;
  metrics::Counter& recall_bytes_;
  metrics::Counter& corrections_;

  std::mutex refresh_mu_;
  int64_t preemptions_seen_ = 0;  // the scheduler's cumulative count at the last Refresh
};

}  // namespace kvserve::server
