#include "server/request_validation.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "engine/model/chat_template.h"
#include "engine/model/prompt_encoding.h"
#include "engine/sampling/sampler.h"

namespace kvserve::server {
namespace {

template <typename... Parts>
absl::Status Invalid(const Parts&... parts) {
  return absl::InvalidArgumentError(absl::StrCat(parts...));
}

// `status` with its message under `field` ("top_p must ..." → "sampling.top_p must ..."); the
// code is kept.
absl::Status Prefixed(const absl::Status& status, absl::string_view prefix) {
  return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
}

absl::Status CheckTokenIds(const google::protobuf::RepeatedField<int32_t>& ids,
                           absl::string_view field, int vocab_size) {
  for (int i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size) {
      return Invalid(field, "[", i, "] = ", ids[i], " is outside the vocabulary [0, ", vocab_size,
                     ")");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> EncodeChat(const v1::ChatMessages& chat,
                                                const RequestContext& context) {
  if (chat.messages().empty()) return Invalid("prompt is empty: chat has no messages");
  std::vector<ChatMessage> messages;
  for (int i = 0; i < chat.messages_size(); ++i) {
    const v1::ChatMessage& m = chat.messages(i);
    if (m.role() != "system" && m.role() != "user" && m.role() != "assistant") {
      return Invalid("chat.messages[", i, "].role must be system, user or assistant, got '",
                     m.role(), "'");
    }
    messages.push_back({m.role(), m.content()});
  }
  if (context.tokenizer == nullptr) {
    return Invalid("chat: this model has no tokenizer (synthetic weights); send token_ids");
  }
  auto text = ChatTemplate(context.chat_template).Apply(messages, /*add_generation_prompt=*/true);
  if (!text.ok()) return Prefixed(text.status(), "chat: ");
  return EncodePromptText(*context.tokenizer, *text);
}

absl::StatusOr<std::vector<int32_t>> EncodePrompt(const v1::GenerateRequest& r,
                                                  const RequestContext& context) {
  switch (r.prompt_case()) {
    case v1::GenerateRequest::kText:
      if (r.text().empty()) return Invalid("prompt is empty");
      if (context.tokenizer == nullptr) {
        return Invalid("text: this model has no tokenizer (synthetic weights); send token_ids");
      }
      return EncodePromptText(*context.tokenizer, r.text());
    case v1::GenerateRequest::kTokenIds: {
      if (r.token_ids().ids().empty()) return Invalid("prompt is empty");
      const auto& ids = r.token_ids().ids();
      if (auto s = CheckTokenIds(ids, "token_ids.ids", context.config.vocab_size); !s.ok()) {
        return s;
      }
      return std::vector<int32_t>(ids.begin(), ids.end());
    }
    case v1::GenerateRequest::kChat:
      return EncodeChat(r.chat(), context);
    case v1::GenerateRequest::PROMPT_NOT_SET:
      break;
  }
  return Invalid("prompt is empty: set text, token_ids or chat");
}

absl::Status ApplySampling(const v1::SamplingOptions& s, const RequestContext& context,
                           EngineRequest& out) {
  const uint32_t max_new = s.has_max_new_tokens() ? s.max_new_tokens() : kDefaultMaxNewTokens;
  if (max_new < 1) return Invalid("sampling.max_new_tokens must be >= 1, got ", max_new);
  // Beyond the context nothing fits anyway; the clamp keeps the int conversion exact.
  const uint32_t limit = static_cast<uint32_t>(context.config.context_length);
  out.max_new_tokens = static_cast<int>(std::min(max_new, limit + 1));
  if (s.min_new_tokens() > max_new) {
    return Invalid("sampling.min_new_tokens (", s.min_new_tokens(),
                   ") must not exceed sampling.max_new_tokens (", max_new, ")");
  }
  out.min_new_tokens = static_cast<int>(s.min_new_tokens());
  const int64_t total = static_cast<int64_t>(out.prompt.size()) + max_new;
  if (total > context.config.context_length) {
    return Invalid("prompt (", out.prompt.size(), " tokens) + sampling.max_new_tokens (", max_new,
                   ") exceeds the model's context length ", context.config.context_length);
  }

  SamplingParams& p = out.sampling;
  p.temperature = s.has_temperature() ? s.temperature() : kDefaultTemperature;
  // top_k beyond the vocabulary means "off" (vLLM); clamp so the int stays exact.
  p.top_k = static_cast<int>(std::min<uint32_t>(s.top_k(), std::numeric_limits<int>::max()));
  p.top_p = s.has_top_p() ? s.top_p() : 1.0f;
  p.min_p = s.min_p();
  p.repetition_penalty = s.has_repetition_penalty() ? s.repetition_penalty() : 1.0f;
  p.presence_penalty = s.presence_penalty();
  p.frequency_penalty = s.frequency_penalty();
  if (s.has_seed()) p.seed = s.seed();
  if (auto status = Sampler::Validate(p, context.config.vocab_size); !status.ok()) {
    return Prefixed(status, "sampling.");
  }

  if (s.stop_size() > 0 && context.tokenizer == nullptr) {
    return Invalid("sampling.stop needs a tokenizer, and this model has none (synthetic weights)");
  }
  for (int i = 0; i < s.stop_size(); ++i) {
    if (s.stop(i).empty()) return Invalid("sampling.stop[", i, "] is empty");
    out.stop.push_back(s.stop(i));
  }
  if (auto status =
          CheckTokenIds(s.stop_token_ids(), "sampling.stop_token_ids", context.config.vocab_size);
      !status.ok()) {
    return status;
  }
  out.stop_token_ids.assign(s.stop_token_ids().begin(), s.stop_token_ids().end());
  out.ignore_eos = s.ignore_eos();  // logprobs is capped by CheckRequestLimits
  out.logprobs = static_cast<int>(s.logprobs());
  return absl::OkStatus();
}

}  // namespace

absl::Status KvFieldStatus(const absl::Status& status) {
  absl::string_view message = status.message();
  if (absl::ConsumePrefix(&message, "kv ")) {
    if (absl::StartsWith(message, "policy ")) {
      return absl::Status(status.code(), absl::StrCat("kv_policy.name: ", message));
    }
    return absl::Status(status.code(), absl::StrCat("kv_policy.", message));
  }
  return Prefixed(status, "kv_policy: ");
}

absl::StatusOr<KvPolicyOptions> ToKvPolicyOptions(const v1::KvPolicy& p,
                                                  const KvPolicyOptions& defaults,
                                                  const ModelConfig& config) {
  KvPolicyOptions o = defaults;
  if (!p.name().empty() && p.name() != defaults.name) {
    o = KvPolicyOptions{.name = p.name(), .page_size = defaults.page_size};  // the server's
  }
  if (p.has_window()) o.window = p.window();
  if (p.has_pool_kernel()) o.pool_kernel = p.pool_kernel();
  if (p.has_pool()) {
    if (p.pool() == "max") {
      o.pool = ScorePooling::kMax;
    } else if (p.pool() == "avg") {
      o.pool = ScorePooling::kAvg;
    } else {
      return Invalid("kv_policy.pool must be max or avg, got '", p.pool(), "'");
    }
  }
  if (p.has_budget()) o.budget = p.budget();
  if (p.has_retain_rate()) o.retain_rate = p.retain_rate();
  if (p.has_tsp_layer()) o.tsp_layer = p.tsp_layer();
  if (p.has_tsp_rate()) o.tsp_rate = p.tsp_rate();
  if (p.has_tsp_len()) o.tsp_len = p.tsp_len();
  if (p.has_page_size()) o.page_size = p.page_size();
  if (p.has_sink()) o.sink = p.sink();
  if (p.has_recent()) o.recent = p.recent();
  if (p.has_tau()) o.tau = p.tau();
  if (absl::Status s = ValidateKvPolicyOptions(o, config); !s.ok()) return KvFieldStatus(s);
  return o;
}

absl::StatusOr<EngineRequest> ToEngineRequest(const v1::GenerateRequest& request,
                                              const RequestContext& context) {
  static const RequestLimits kDefaultLimits;
  const int max_token_bytes = context.max_token_bytes > 0 || context.tokenizer == nullptr
                                  ? context.max_token_bytes
                                  : MaxTokenBytes(*context.tokenizer);
  if (absl::Status s =
          CheckRequestLimits(request, context.limits ? *context.limits : kDefaultLimits,
                             context.config.context_length, max_token_bytes);
      !s.ok()) {
    return s;
  }
  EngineRequest out;
  auto prompt = EncodePrompt(request, context);
  if (!prompt.ok()) return prompt.status();
  out.prompt = *std::move(prompt);
  if (auto s = ApplySampling(request.sampling(), context, out); !s.ok()) return s;
  auto kv = ToKvPolicyOptions(request.kv_policy(), context.default_kv_policy, context.config);
  if (!kv.ok()) return kv.status();
  out.kv_policy = *std::move(kv);
  return out;
}

}  // namespace kvserve::server
