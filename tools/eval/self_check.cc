#include "tools/eval/self_check.h"

#include "engine/scheduler/batch_generator.h"
#include "tools/eval/prompt_evaluation.h"

namespace kvserve::eval {

absl::StatusOr<std::vector<SelfCheckResult>> SelfCheckPrompt(Backend& backend,
                                                             std::span<const int32_t> prompt,
                                                             std::span<const EvalConfig> configs,
                                                             int max_new_tokens, int32_t eos_id) {
  const ModelConfig& config = backend.config();
  PagePool pool({config.n_kv_heads, 32, config.head_dim}, PagePool::kUnbounded, backend.kv_dtype());
  auto shared = EvaluatePrompt(backend, pool, prompt, configs, max_new_tokens, eos_id);
  if (!shared.ok()) return shared.status();
  // One chunk for every policy, `full` included, so the prefill arithmetic is the same.
  BatchGenerator generator(backend, {.prefill_chunk_tokens = 1 << 30, .eos_id = eos_id});
  std::vector<SelfCheckResult> out;
  for (const EvalConfig& c : configs) {
    // Skipped: a budget that covers the prompt, and evaluation-only variants (no real policy).
    if (!shared->results.contains(c.label) || !c.experiment.empty()) continue;
    GenerationRequest request{.prompt = {prompt.begin(), prompt.end()},
                              .max_new_tokens = max_new_tokens,
                              .kv_policy = *ForPrompt(c, static_cast<int>(prompt.size()))};
    auto real = generator.Generate(std::span(&request, 1));
    if (!real.ok()) return real.status();
    const GenerationResult& r = real->front();
    const DecodeResult& s = shared->results.at(c.label);
    out.push_back({.config = c.label,
                   .shared_tokens = s.tokens,
                   .real_tokens = r.tokens,
                   .tokens_equal = s.tokens == r.tokens,
                   .stats_equal = s.kv.kept_tokens == r.kv.kept_tokens &&
                                  s.kv.tsp_tokens == r.kv.tsp_tokens &&
                                  s.kv.prefill_flops_fraction == r.kv.prefill_flops_fraction});
  }
  return out;
}

}  // namespace kvserve::eval
