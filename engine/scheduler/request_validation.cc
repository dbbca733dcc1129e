#include "engine/scheduler/request_validation.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "engine/kv/kv_policy.h"
#include "engine/sampling/sampler.h"

namespace kvserve {

absl::Status ValidateEngineRequest(const EngineRequest& r, const ModelConfig& config,
                                   const Tokenizer* tokenizer) {
  auto bad = [](auto&&... parts) { return absl::InvalidArgumentError(absl::StrCat(parts...)); };
  if (r.prompt.empty()) return bad("prompt is empty");
  for (int32_t t : r.prompt) {
    if (t < 0 || t >= config.vocab_size) {
      return bad("prompt token id ", t, " is outside the vocabulary [0, ", config.vocab_size, ")");
    }
  }
  if (r.max_new_tokens < 1) return bad("max_new_tokens must be >= 1, got ", r.max_new_tokens);
  if (r.min_new_tokens < 0) return bad("min_new_tokens must be >= 0, got ", r.min_new_tokens);
  if (r.min_new_tokens > r.max_new_tokens) {
    return bad("min_new_tokens (", r.min_new_tokens, ") must not exceed max_new_tokens (",
               r.max_new_tokens, ")");
  }
  const int64_t total = static_cast<int64_t>(r.prompt.size()) + r.max_new_tokens;
  if (total > config.context_length) {
    return bad("prompt (", r.prompt.size(), " tokens) + max_new_tokens (", r.max_new_tokens,
               ") exceeds the model's context length ", config.context_length);
  }
  if (auto s = Sampler::Validate(r.sampling, config.vocab_size); !s.ok()) return s;
  for (int32_t t : r.stop_token_ids) {
    if (t < 0 || t >= config.vocab_size) {
      return bad("stop_token_ids: token id ", t, " is outside the vocabulary [0, ",
                 config.vocab_size, ")");
    }
  }
  if (!r.stop.empty() && tokenizer == nullptr) {
    return bad("stop strings need a tokenizer, and this model has none");
  }
  for (const std::string& stop : r.stop) {
    if (stop.empty()) return bad("stop strings must not be empty");
  }
  if (r.logprobs < 0 || r.logprobs > kMaxLogprobs) {
    return bad("logprobs must be in [0, ", kMaxLogprobs, "], got ", r.logprobs);
  }
  return ValidateKvPolicyOptions(r.kv_policy, config);
}

}  // namespace kvserve
