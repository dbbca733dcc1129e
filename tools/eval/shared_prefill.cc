#include "tools/eval/shared_prefill.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/kv/budget_cache.h"
#include "engine/kv/kv_cache_copy.h"
#include "engine/sampling/sampler.h"
#include "tools/eval/experiment_policies.h"

namespace kvserve::eval {

absl::StatusOr<SharedPrefill> RunSharedPrefill(Backend& backend, PagePool& pool,
                                               std::span<const int32_t> prompt,
                                               std::unique_ptr<KvPolicy> tsp_policy, int window) {
  const ModelConfig& config = backend.config();
  SharedPrefill out;
  out.prompt.assign(prompt.begin(), prompt.end());
  out.kv = std::make_unique<SequenceKvCache>(pool, config.n_layers);
  const int n = static_cast<int>(prompt.size());
  const PromptCompressionPlan plan = RecordingPlan(
      tsp_policy ? tsp_policy->PlanPrompt(n) : PromptCompressionPlan{}, n, config.n_layers, window);
  std::vector<int32_t> positions(prompt.size());
  for (size_t i = 0; i < positions.size(); ++i) positions[i] = static_cast<int32_t>(i);
  const SequenceChunk chunk{.tokens = out.prompt,
                            .positions = positions,
                            .kv = out.kv.get(),
                            .compute_logits = true,
                            .policy = tsp_policy.get(),
                            .whole_prompt = true,
                            .compression = &plan};
  const auto start = std::chrono::steady_clock::now();
  StepOutput step;
  KVSERVE_RETURN_IF_ERROR(GrowForStep(backend, std::span(&chunk, 1)));
  KVSERVE_RETURN_IF_ERROR(backend.Execute(std::span(&chunk, 1), &step));
  KVSERVE_RETURN_IF_ERROR(step.chunk_status[0]);
  ApplyRetention(std::span(&chunk, 1), step);
  out.logits = std::move(step.logits);
  out.prefill_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (static_cast<int>(step.prompt_layers[0].size()) != config.n_layers) {
    return absl::InternalError(absl::StrCat("shared prefill: the backend recorded ",
                                            step.prompt_layers[0].size(), " of ", config.n_layers,
                                            " layers"));
  }
  out.layers = std::move(step.prompt_layers[0]);
  if (tsp_policy) {
    out.stats = tsp_policy->Stats(*out.kv);
  } else {
    out.stats.policy = "full";
    for (int l = 0; l < config.n_layers; ++l) out.stats.kept_tokens.push_back(out.kv->length(l));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<PrefilledConfig>> PrefilledConfig::Create(
    Backend& backend, PagePool& pool, const SharedPrefill& prefill, const KvPolicyOptions& options,
    const std::string& experiment) {
  const ModelConfig& config = backend.config();
  std::unique_ptr<PrefilledConfig> out(new PrefilledConfig());
  out->backend_ = &backend;
  auto policy = CreateEvalPolicy(options, experiment, config);
  if (!policy.ok()) return policy.status();
  out->policy_ = *std::move(policy);
  KvPolicy& p = *out->policy_;
  // Tiered policies select whole pages: their cache takes their page size (rows copy across).
  const TieredOptions* tiered = TieredOptionsOf(options);
  if (tiered != nullptr && tiered->page_size != pool.page_size()) {
    out->own_pool_ = std::make_unique<PagePool>(
        KvPageShape{config.n_kv_heads, tiered->page_size, config.head_dim}, PagePool::kUnbounded,
        pool.dtype());
  }
  const std::string name(KvPolicyName(options));
  out->kv_ =
      std::make_unique<SequenceKvCache>(out->own_pool_ ? *out->own_pool_ : pool, config.n_layers);
  SequenceKvCache& kv = *out->kv_;
  KVSERVE_RETURN_IF_ERROR(CopyKvCache(*prefill.kv, kv));

  // Replay the plan's selection on the recorded scores, as the backend would have run it.
  const PromptCompressionPlan plan = p.PlanPrompt(static_cast<int>(prefill.prompt.size()));
  std::vector<int32_t> positions(prefill.prompt.size());  // of the rows the layer runs on
  for (size_t i = 0; i < positions.size(); ++i) positions[i] = static_cast<int32_t>(i);
  out->retained_.resize(config.n_layers);
  for (int l = 0; l < config.n_layers; ++l) {
    const PromptLayerRecord& r = prefill.layers[l];
    if (plan.empty()) {
      if (!r.propagate.empty()) {
        return absl::FailedPreconditionError(
            absl::StrCat("shared prefill: ", name, " propagates every row, the prefill did not"));
      }
      continue;
    }
    const int window = plan.layers[l].window;
    if (window > 0 && window != r.window) {
      return absl::FailedPreconditionError(absl::StrCat("shared prefill: ", name, " wants window ",
                                                        window, " at layer ", l,
                                                        ", the prefill recorded ", r.window));
    }
    KVSERVE_ASSIGN_OR_RETURN(
        const LayerSelection d,
        SelectPromptRows(plan, l, r.n,
                         window > 0 ? std::span<const float>(r.scores) : std::span<const float>(),
                         config.n_heads, config.n_kv_heads));
    if (d.propagate != r.propagate) {
      return absl::FailedPreconditionError(absl::StrCat(
          "shared prefill: ", name, " propagates other rows at layer ", l,
          " than the prefill did (", d.propagate.size(), " vs ", r.propagate.size(), ")"));
    }
    if (!d.retain.empty()) kv.Retain(l, d.retain);
    for (const std::vector<int32_t>& head : d.retain) {
      std::vector<int32_t>& kept = out->retained_[l].emplace_back();
      for (int32_t row : head) kept.push_back(positions[row]);
    }
    if (!r.propagate.empty()) {
      std::vector<int32_t> next;
      for (int32_t row : r.propagate) next.push_back(positions[row]);
      positions = std::move(next);
    }
  }
  if (prefill.logits.size() != static_cast<size_t>(config.vocab_size)) {
    return absl::InternalError("shared prefill: no logits for the prompt's last token");
  }
  out->next_position_ = static_cast<int32_t>(prefill.prompt.size());
  return out;
}

absl::Status PrefilledConfig::Step(int32_t token, std::vector<float>* logits) {
  const int32_t position = next_position_++;
  // The cache's owner gives a tiered policy its device budget before the step, as the engine does.
  ProvideDeviceBudget(*policy_, *kv_, 1);
  const SequenceChunk chunk{.tokens = std::span(&token, 1),
                            .positions = std::span(&position, 1),
                            .kv = kv_.get(),
                            .compute_logits = true,
                            .policy = policy_.get(),
                            .kind = ChunkKind::kDecode};
  return backend_->Forward(std::span(&chunk, 1), logits);
}

absl::StatusOr<DecodeResult> DecodeFromSharedPrefill(Backend& backend, PagePool& pool,
                                                     const SharedPrefill& prefill,
                                                     const KvPolicyOptions& options,
                                                     int max_new_tokens, int32_t eos_id,
                                                     const std::string& experiment) {
  auto config = PrefilledConfig::Create(backend, pool, prefill, options, experiment);
  if (!config.ok()) return config.status();
  // Greedy decode, as BatchGenerator runs it: the first token from the prefill's logits, then one
  // token per step at its logical position.
  Sampler sampler(SamplingParams{});
  TokenHistory history(prefill.prompt);
  std::vector<float> logits = prefill.logits;
  DecodeResult out;
  for (;;) {
    const int32_t token = sampler.Sample(logits, history);
    history.AddOutput(token);
    out.tokens.push_back(token);
    if (token == eos_id || static_cast<int>(out.tokens.size()) >= max_new_tokens) break;
    KVSERVE_RETURN_IF_ERROR((*config)->Step(token, &logits));
  }
  out.kv = (*config)->Stats();
  out.retained = (*config)->retained();
  if (const ResidencyLog* log = RecordedResidency((*config)->policy())) out.residency = *log;
  return out;
}

}  // namespace kvserve::eval
