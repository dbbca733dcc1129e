#include "tools/cli/client_request.h"

#include "engine/base/status_macros.h"

namespace kvserve::cli {

absl::StatusOr<kvserve::v1::GenerateRequest> BuildGenerateRequest(const RequestOptions& o) {
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

  KVSERVE_ASSIGN_OR_RETURN(*r.mutable_kv_policy(), ToProtoKvPolicy(o.kv));
  return r;
}

}  // namespace kvserve::cli
