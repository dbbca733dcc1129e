#include "tools/eval/shared_prefill.h"

#include <chrono>

#include "absl/strings/str_cat.h"
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
  RecordingPolicy recorder(std::move(tsp_policy), window);
  std::vector<int32_t> positions(prompt.size());
  for (size_t i = 0; i < positions.size(); ++i) positions[i] = static_cast<int32_t>(i);
  const SequenceChunk chunk{.tokens = out.prompt,
                            .positions = positions,
                            .kv = out.kv.get(),
                            .compute_logits = true,
                            .policy = &recorder,
                            .whole_prompt = true};
  const auto start = std::chrono::steady_clock::now();
  if (auto s = backend.Forward(std::span(&chunk, 1), &out.logits); !s.ok()) return s;
  out.prefill_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (static_cast<int>(recorder.layers().size()) != config.n_layers) {
    return absl::InternalError(absl::StrCat("shared prefill: the backend reported ",
                                            recorder.layers().size(), " of ", config.n_layers,
                                            " layers to the policy"));
  }
  out.layers = recorder.layers();
  out.stats = recorder.Stats(*out.kv);
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

  // Replay the prefill's hooks in the backend's order: ScoreWindow, then OnPromptLayer.
  for (int l = 0; l < config.n_layers; ++l) {
    const PromptLayerRecord& r = prefill.layers[l];
    const int window = p.ScoreWindow(l, r.n);
    if (window > 0 && window != r.window) {
      return absl::FailedPreconditionError(absl::StrCat("shared prefill: ", options.name,
                                                        " wants window ", window, " at layer ", l,
                                                        ", the prefill recorded ", r.window));
    }
    const KvPolicy::LayerDecision d = p.OnPromptLayer(
        l, r.n, window > 0 ? std::span<const float>(r.scores) : std::span<const float>());
    if (d.propagate != r.propagate) {
      return absl::FailedPreconditionError(absl::StrCat(
          "shared prefill: ", options.name, " propagates other rows at layer ", l,
          " than the prefill did (", d.propagate.size(), " vs ", r.propagate.size(), ")"));
    }
    if (!d.retain.empty()) kv.Retain(l, d.retain);
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
