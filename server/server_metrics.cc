#include "server/server_metrics.h"

#include <algorithm>
#include <numeric>
#include <string>

namespace kvserve::server {
namespace {

// vLLM's request-latency bounds, extended below 0.3 s where a small model's requests end.
std::vector<double> RequestLatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1,   1.5,  2,   2.5,
          5,     10,     15,    20,   30,    40,   50,  60,  120, 240, 480, 960, 1920, 7680};
}

// 1-2-5 steps up to a million tokens, past any model's context (vLLM stops at max_model_len).
std::vector<double> TokenCountBuckets() {
  std::vector<double> buckets;
  for (double scale = 1; scale <= 1e6; scale *= 10) {
    for (double step : {1.0, 2.0, 5.0}) buckets.push_back(step * scale);
  }
  return buckets;
}

}  // namespace

std::vector<double> DefaultTtftBuckets() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1,
          2,     2.5,   5,    7.5,  10,   20,   40,   80,  160,  640, 2560};
}

std::vector<double> DefaultItlBuckets() {
  return {0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05,
          0.075, 0.1,    0.15,  0.2,    0.3,  0.4,   0.5,  0.75,  1,    2.5};
}

namespace {

prometheus::Histogram& AddHistogram(prometheus::Registry& r, const std::string& name,
                                    const std::string& help, std::vector<double> buckets) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(r).Add({}, std::move(buckets));
}

prometheus::Counter& AddCounter(prometheus::Registry& r, const std::string& name,
                                const std::string& help, const prometheus::Labels& labels = {}) {
  // Registering a family again with the same name, help and type returns the same family.
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add(labels);
}

}  // namespace

ServerMetrics::ServerMetrics(prometheus::Registry& r, std::vector<double> ttft_buckets,
                             std::vector<double> itl_buckets)
    : ttft_(AddHistogram(r, "kvserve_time_to_first_token_seconds",
                         "Time from a request's arrival to its first generated token.",
                         ttft_buckets.empty() ? DefaultTtftBuckets() : std::move(ttft_buckets))),
      itl_(AddHistogram(r, "kvserve_inter_token_latency_seconds",
                        "Time between consecutive token outputs of a request.",
                        itl_buckets.empty() ? DefaultItlBuckets() : std::move(itl_buckets))),
      e2e_(AddHistogram(r, "kvserve_e2e_request_latency_seconds",
                        "Time from a request's arrival to its last output.",
                        RequestLatencyBuckets())),
      queue_time_(AddHistogram(r, "kvserve_request_queue_time_seconds",
                               "Time a request waited before it was first scheduled.",
                               RequestLatencyBuckets())),
      prefill_time_(AddHistogram(r, "kvserve_request_prefill_time_seconds",
                                 "Time from a request's first scheduling to its prompt's end.",
                                 RequestLatencyBuckets())),
      decode_time_(AddHistogram(r, "kvserve_request_decode_time_seconds",
                                "Time from a request's first token to its last.",
                                RequestLatencyBuckets())),
      prompt_tokens_(AddHistogram(r, "kvserve_request_prompt_tokens",
                                  "Prompt tokens of each finished request.", TokenCountBuckets())),
      generation_tokens_(AddHistogram(r, "kvserve_request_generation_tokens",
                                      "Generated tokens of each finished request.",
                                      TokenCountBuckets())),
      kv_kept_ratio_(prometheus::BuildGauge()
                         .Name("kvserve_kv_tokens_kept_ratio")
                         .Help("KV tokens the last finished request of a policy kept, over the "
                               "tokens a full cache holds.")
                         .Register(r)),
      prompt_tokens_total_(
          AddCounter(r, "kvserve_prompt_tokens_total", "Prompt tokens processed (prefilled).")),
      generation_tokens_total_(
          AddCounter(r, "kvserve_generation_tokens_total", "Tokens generated.")),
      success_{},
      rejected_queue_full_(AddCounter(r, "kvserve_requests_rejected_total",
                                      "Requests refused before they were queued.",
                                      {{"reason", "queue_full"}})),
      rejected_invalid_(AddCounter(r, "kvserve_requests_rejected_total",
                                   "Requests refused before they were queued.",
                                   {{"reason", "invalid"}})),
      rejected_unavailable_(AddCounter(r, "kvserve_requests_rejected_total",
                                       "Requests refused before they were queued.",
                                       {{"reason", "unavailable"}})),
      recall_bytes_(AddCounter(r, "kvserve_kv_recall_bytes_total",
                               "KV bytes recalled from the host tier to the device.")),
      corrections_(AddCounter(r, "kvserve_freekv_corrections_total",
                              "FreeKV per-KV-head corrections of speculative page selection.")) {
  for (FinishReason reason :
       {FinishReason::kEos, FinishReason::kMaxTokens, FinishReason::kStop, FinishReason::kCancelled,
        FinishReason::kDeadline, FinishReason::kError}) {
    success_[static_cast<int>(reason)] =
        &AddCounter(r, "kvserve_request_success_total", "Requests finished, by finish reason.",
                    {{"finished_reason", std::string(FinishReasonName(reason))}});
  }
}

void ServerMetrics::ObserveFirstToken(double seconds, int prompt_tokens) {
  ttft_.Observe(seconds);
  prompt_tokens_total_.Increment(prompt_tokens);
}

void ServerMetrics::ObserveInterToken(double seconds) { itl_.Observe(seconds); }

void ServerMetrics::CountGeneratedTokens(int tokens) {
  if (tokens > 0) generation_tokens_total_.Increment(tokens);
}

void ServerMetrics::ObserveFinished(const SequenceOutput& last, double e2e_seconds) {
  e2e_.Observe(e2e_seconds);
  // Phases a request never reached (cancelled while queued) are not observed.
  if (last.timing.queue_ms > 0 || last.completion_tokens > 0) {
    queue_time_.Observe(last.timing.queue_ms / 1000.0);
  }
  if (last.completion_tokens > 0) {
    prefill_time_.Observe(last.timing.prefill_ms / 1000.0);
    decode_time_.Observe(last.timing.decode_ms / 1000.0);
    prompt_tokens_.Observe(last.prompt_tokens);
    generation_tokens_.Observe(last.completion_tokens);
  }
  const int reason = static_cast<int>(last.finish_reason);
  if (reason >= 0 && reason < kFinishReasons) success_[reason]->Increment();
  if (last.kv.recalled_bytes > 0)
    recall_bytes_.Increment(static_cast<double>(last.kv.recalled_bytes));
  if (last.kv.corrections > 0) corrections_.Increment(static_cast<double>(last.kv.corrections));
  // A full cache holds every token but the last generated one (never run through the model).
  const std::vector<int>& kept = last.kv.kept_tokens;
  const int64_t full = last.prompt_tokens + std::max(last.completion_tokens - 1, 0);
  if (!kept.empty() && full > 0) {
    const double mean_kept =
        std::accumulate(kept.begin(), kept.end(), 0.0) / static_cast<double>(kept.size());
    const std::string policy = last.kv.policy.empty() ? "unknown" : last.kv.policy;
    kv_kept_ratio_.Add({{"policy", policy}})
        .Set(std::clamp(mean_kept / static_cast<double>(full), 0.0, 1.0));
  }
}

void ServerMetrics::CountRejected(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kResourceExhausted:
      rejected_queue_full_.Increment();
      break;
    case absl::StatusCode::kUnavailable:
      rejected_unavailable_.Increment();
      break;
    default:
      rejected_invalid_.Increment();
      break;
  }
}

}  // namespace kvserve::server
