#include "engine/scheduler/request_validation.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "engine/base/field_violation.h"
#include "engine/base/status_macros.h"
#include "engine/kv/kv_policy.h"
#include "engine/sampling/sampler.h"

namespace kvserve {
namespace {

absl::Status CheckTokenIds(const std::vector<int32_t>& ids, absl::string_view field,
                           int vocab_size) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size) {
      return InvalidField(
          absl::StrCat(field, "[", i, "]"),
          absl::StrCat("= ", ids[i], " is outside the vocabulary [0, ", vocab_size, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateEngineRequest(const EngineRequest& r, const ModelConfig& config,
                                   const Tokenizer* tokenizer) {
  if (r.prompt.empty()) return InvalidField("prompt", "is empty");
  KVSERVE_RETURN_IF_ERROR(CheckTokenIds(r.prompt, "prompt", config.vocab_size));
  if (r.max_new_tokens < 1) {
    return InvalidField("max_new_tokens", absl::StrCat("must be >= 1, got ", r.max_new_tokens));
  }
  if (r.min_new_tokens < 0) {
    return InvalidField("min_new_tokens", absl::StrCat("must be >= 0, got ", r.min_new_tokens));
  }
  if (r.min_new_tokens > r.max_new_tokens) {
    return InvalidField("min_new_tokens",
                        absl::StrCat("must not exceed the most new tokens (", r.max_new_tokens,
                                     "), got ", r.min_new_tokens));
  }
  const int64_t total = static_cast<int64_t>(r.prompt.size()) + r.max_new_tokens;
  if (total > config.context_length) {
    return InvalidField(
        "max_new_tokens",
        absl::StrCat("(", r.max_new_tokens, ") plus the prompt's ", r.prompt.size(),
                     " tokens exceeds the model's context length ", config.context_length));
  }
  KVSERVE_RETURN_IF_ERROR(
      PrefixFieldPath(Sampler::Validate(r.sampling, config.vocab_size), "sampling."));
  KVSERVE_RETURN_IF_ERROR(CheckTokenIds(r.stop_token_ids, "stop_token_ids", config.vocab_size));
  if (!r.stop.empty() && tokenizer == nullptr) {
    return InvalidField("stop", "needs a tokenizer, and this model has none");
  }
  for (size_t i = 0; i < r.stop.size(); ++i) {
    if (r.stop[i].empty()) return InvalidField(absl::StrCat("stop[", i, "]"), "is empty");
  }
  if (r.logprobs < 0 || r.logprobs > kMaxLogprobs) {
    return InvalidField("logprobs",
                        absl::StrCat("must be in [0, ", kMaxLogprobs, "], got ", r.logprobs));
  }
  if (!r.kv_policy) return absl::OkStatus();
  return PrefixFieldPath(ValidateKvPolicyOptions(*r.kv_policy, config), "kv_policy.");
}

}  // namespace kvserve
