#include "tools/eval/shared_prefill.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/kv/kv_cache_copy.h"
#include "engine/sampling/sampler.h"

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
  KVSERVE_RETURN_IF_ERROR(backend.Execute(std::span(&chunk, 1), &step));
  KVSERVE_RETURN_IF_ERROR(step.chunk_status[0]);
  out.logits = std::move(step.logits);
  out.prefill_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (static_cast<int>(step.prompt_layers[0].size()) != config.n_layers) {
    return absl::InternalError(absl::StrCat("shared prefill: the backend recorded ",
                                            step.prompt_layers[0].size(), " of ", config.n_layers,
                                            " layers"));
  }
  out.layers = std::move(step.prompt_layers[0]);
  out.stats = tsp_policy ? tsp_policy->Stats(*out.kv) : KvStats{.policy = "full"};
  if (!tsp_policy) {
    for (int l = 0; l < config.n_layers; ++l) out.stats.kept_tokens.push_back(out.kv->length(l));
  }
  return out;
}

absl::StatusOr<DecodeResult> DecodeFromSharedPrefill(Backend& backend, PagePool& pool,
                                                     const SharedPrefill& prefill,
                                                     const KvPolicyOptions& options,
                                                     int max_new_tokens, int32_t eos_id) {
  const ModelConfig& config = backend.config();
  auto policy = CreateKvPolicy(options, config);
  if (!policy.ok()) return policy.status();
  KvPolicy& p = **policy;
  // Tiered policies select whole pages: their cache takes their page size (rows copy across).
  std::unique_ptr<PagePool> own_pool;
  if (IsTieredKvPolicy(options.name) && options.page_size != pool.page_size()) {
    own_pool = std::make_unique<PagePool>(
        KvPageShape{config.n_kv_heads, options.page_size, config.head_dim}, PagePool::kUnbounded);
  }
  SequenceKvCache kv(own_pool ? *own_pool : pool, config.n_layers);
  if (auto s = CopyKvCache(*prefill.kv, kv); !s.ok()) return s;

  // Replay the plan's selection on the recorded scores, as the backend would have run it.
  const PromptCompressionPlan plan = p.PlanPrompt(static_cast<int>(prefill.prompt.size()));
  for (int l = 0; l < config.n_layers && !plan.empty(); ++l) {
    const PromptLayerRecord& r = prefill.layers[l];
    const int window = plan.layers[l].window;
    if (window > 0 && window != r.window) {
      return absl::FailedPreconditionError(absl::StrCat("shared prefill: ", options.name,
                                                        " wants window ", window, " at layer ", l,
                                                        ", the prefill recorded ", r.window));
    }
    KVSERVE_ASSIGN_OR_RETURN(
        const LayerSelection d,
        SelectPromptRows(plan, l, r.n,
                         window > 0 ? std::span<const float>(r.scores) : std::span<const float>(),
                         config.n_heads, config.n_kv_heads));
    if (d.propagate != r.propagate) {
      return absl::FailedPreconditionError(absl::StrCat(
          "shared prefill: ", options.name, " propagates other rows at layer ", l,
          " than the prefill did (", d.propagate.size(), " vs ", r.propagate.size(), ")"));
    }
    if (!d.retain.empty()) kv.Retain(l, d.retain);
  }
  if (plan.empty()) {
    for (const PromptLayerRecord& r : prefill.layers) {
      if (!r.propagate.empty()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "shared prefill: ", options.name, " propagates every row, the prefill did not"));
      }
    }
  }

  // Greedy decode, as BatchGenerator runs it: the first token from the prefill's logits, then one
  // token per step at its logical position.
  const int vocab = config.vocab_size;
  if (prefill.logits.size() != static_cast<size_t>(vocab)) {
    return absl::InternalError("shared prefill: no logits for the prompt's last token");
  }
  Sampler sampler(SamplingParams{});
  TokenHistory history(prefill.prompt);
  std::vector<float> logits = prefill.logits;
  DecodeResult out;
  for (;;) {
    const int32_t token = sampler.Sample(logits, history);
    history.AddOutput(token);
    out.tokens.push_back(token);
    if (token == eos_id || static_cast<int>(out.tokens.size()) >= max_new_tokens) break;
    const int32_t position = static_cast<int32_t>(prefill.prompt.size() + out.tokens.size() - 1);
    const SequenceChunk chunk{.tokens = std::span(&out.tokens.back(), 1),
                              .positions = std::span(&position, 1),
                              .kv = &kv,
                              .compute_logits = true,
                              .policy = &p};
    if (auto s = backend.Forward(std::span(&chunk, 1), &logits); !s.ok()) return s;
  }
  out.kv = p.Stats(kv);
  return out;
}

}  // namespace kvserve::eval
