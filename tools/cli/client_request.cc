#include "tools/cli/client_request.h"

namespace kvserve::cli {

namespace {

void SetKvPolicy(const KvPolicyOptions& kv, const FlagGiven& given, kvserve::v1::KvPolicy& p) {
  if (given("--kv-policy")) p.set_name(kv.name);
  if (given("--kv-window")) p.set_window(kv.window);
  if (given("--kv-pool-kernel")) p.set_pool_kernel(kv.pool_kernel);
  if (given("--kv-pool")) p.set_pool(kv.pool == ScorePooling::kAvg ? "avg" : "max");
  if (given("--kv-budget")) p.set_budget(kv.budget);
  if (given("--kv-retain-rate")) p.set_retain_rate(kv.retain_rate);
  if (given("--kv-tsp-layer")) p.set_tsp_layer(kv.tsp_layer);
  if (given("--kv-tsp-rate")) p.set_tsp_rate(kv.tsp_rate);
  if (given("--kv-tsp-len")) p.set_tsp_len(kv.tsp_len);
  if (given("--kv-page-size")) p.set_page_size(kv.page_size);
  if (given("--kv-sink")) p.set_sink(kv.sink);
  if (given("--kv-recent")) p.set_recent(kv.recent);
  if (given("--kv-tau")) p.set_tau(kv.tau);
}

}  // namespace

absl::StatusOr<kvserve::v1::GenerateRequest> BuildGenerateRequest(const RequestOptions& o,
                                                                  const FlagGiven& given) {
  kvserve::v1::GenerateRequest r;
  if (!o.prompt_ids.empty()) {
    if (o.chat) return absl::InvalidArgumentError("--chat needs --prompt text, not --prompt-ids");
    r.mutable_token_ids()->mutable_ids()->Add(o.prompt_ids.begin(), o.prompt_ids.end());
  } else if (o.prompt.empty()) {
    return absl::InvalidArgumentError("give --prompt or --prompt-ids");
  } else if (o.chat) {
    auto* messages = r.mutable_chat()->mutable_messages();
    if (!o.system.empty()) {
      auto* system = messages->Add();
      system->set_role("system");
      system->set_content(o.system);
    }
    auto* user = messages->Add();
    user->set_role("user");
    user->set_content(o.prompt);
  } else {
    r.set_text(o.prompt);
  }
  if (o.max_tokens < 0) return absl::InvalidArgumentError("--max-tokens must be at least 0");

  kvserve::v1::SamplingOptions& s = *r.mutable_sampling();
  s.set_max_new_tokens(static_cast<uint32_t>(o.max_tokens));
  s.set_temperature(o.sampling.temperature);
  if (o.sampling.top_k < 0) return absl::InvalidArgumentError("--top-k must be at least 0");
  s.set_top_k(static_cast<uint32_t>(o.sampling.top_k));
  s.set_top_p(o.sampling.top_p);
  s.set_min_p(o.sampling.min_p);
  s.set_repetition_penalty(o.sampling.repetition_penalty);
  s.set_presence_penalty(o.sampling.presence_penalty);
  s.set_frequency_penalty(o.sampling.frequency_penalty);
  if (o.seed >= 0) s.set_seed(static_cast<uint64_t>(o.seed));
  s.mutable_stop_token_ids()->Add(o.stop_token_ids.begin(), o.stop_token_ids.end());
  s.set_ignore_eos(o.ignore_eos);

  SetKvPolicy(o.kv_policy, given, *r.mutable_kv_policy());
  return r;
}

}  // namespace kvserve::cli
