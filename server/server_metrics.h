#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "engine/scheduler/engine_core.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace kvserve::server {

// Histogram bounds in seconds. TTFT: vLLM's list with 2 s added (a common SLO); ITL: fine steps
// from 1 ms, since a small model decodes a token in a few ms (vLLM's 10 ms floor is too coarse).
std::vector<double> DefaultTtftBuckets();
std::vector<double> DefaultItlBuckets();

// kvserve's per-request Prometheus metrics (prometheus-cpp): vLLM's names and semantics with a
// kvserve_ prefix, plus the KV policies' own (DESIGN.md § Contracts). The scheduler's gauges are
// read at scrape time by SchedulerCollectable. Observers are called from the engine thread's output
// callbacks and the gRPC threads; prometheus-cpp's metrics are thread-safe and lock-free.
class ServerMetrics {
 public:
  // Empty bucket lists take the defaults.
  ServerMetrics(prometheus::Registry& registry, std::vector<double> ttft_buckets,
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

 private:
  static constexpr int kFinishReasons = 6;  // FinishReason's values

  prometheus::Histogram& ttft_;
  prometheus::Histogram& itl_;
  prometheus::Histogram& e2e_;
  prometheus::Histogram& queue_time_;
  prometheus::Histogram& prefill_time_;
  prometheus::Histogram& decode_time_;
  prometheus::Histogram& prompt_tokens_;
  prometheus::Histogram& generation_tokens_;
  // One gauge per KV policy, added as a policy first finishes a request.
  prometheus::Family<prometheus::Gauge>& kv_kept_ratio_;
  prometheus::Counter& prompt_tokens_total_;
  prometheus::Counter& generation_tokens_total_;
  std::array<prometheus::Counter*, kFinishReasons> success_;
  prometheus::Counter& rejected_queue_full_;
  prometheus::Counter& rejected_invalid_;
  prometheus::Counter& rejected_unavailable_;
  prometheus::Counter& recall_bytes_;
  prometheus::Counter& corrections_;
};

}  // namespace kvserve::server
