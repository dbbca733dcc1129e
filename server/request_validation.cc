#include "server/request_validation.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "engine/base/field_violation.h"
#include "engine/base/status_macros.h"
#include "engine/model/chat_template.h"
#include "engine/model/prompt_encoding.h"
#include "engine/scheduler/request_validation.h"
#include "server/kv_policy_conversion.h"

namespace kvserve::server {
namespace {

// `status` with its message under `field` ("top_p must ..." → "sampling.top_p must ..."); the
// code is kept.
absl::Status Prefixed(const absl::Status& status, absl::string_view prefix) {
  return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
}

absl::StatusOr<std::vector<int32_t>> EncodeChat(const v1::ChatMessages& chat,
                                                const RequestContext& context) {
  if (chat.messages().empty()) return InvalidField("chat.messages", "is empty");
  std::vector<ChatMessage> messages;
  for (int i = 0; i < chat.messages_size(); ++i) {
    const v1::ChatMessage& m = chat.messages(i);
    if (m.role() != "system" && m.role() != "user" && m.role() != "assistant") {
      return InvalidField(absl::StrCat("chat.messages[", i, "].role"),
                          absl::StrCat("must be system, user or assistant, got '", m.role(), "'"));
    }
    messages.push_back({m.role(), m.content()});
  }
  if (context.tokenizer == nullptr) {
    return InvalidField("chat",
                        "needs a tokenizer, and this model has none (synthetic weights); "
                        "send token_ids");
  }
  auto text = ChatTemplate(context.chat_template).Apply(messages, /*add_generation_prompt=*/true);
  if (!text.ok()) return Prefixed(text.status(), "chat: ");
  return EncodePromptText(*context.tokenizer, *text);
}

absl::StatusOr<std::vector<int32_t>> EncodePrompt(const v1::GenerateRequest& r,
                                                  const RequestContext& context) {
  switch (r.prompt_case()) {
    case v1::GenerateRequest::kText:
      if (r.text().empty()) return InvalidField("text", "is empty");
      if (context.tokenizer == nullptr) {
        return InvalidField("text",
                            "needs a tokenizer, and this model has none (synthetic "
                            "weights); send token_ids");
      }
      return EncodePromptText(*context.tokenizer, r.text());
    case v1::GenerateRequest::kTokenIds: {
      const auto& ids = r.token_ids().ids();  // checked by ValidateEngineRequest
      return std::vector<int32_t>(ids.begin(), ids.end());
    }
    case v1::GenerateRequest::kChat:
      return EncodeChat(r.chat(), context);
    case v1::GenerateRequest::PROMPT_NOT_SET:
      break;
  }
  return InvalidField("prompt", "is not set: set text, token_ids or chat");
}

// The sampling fields as the engine takes them (absent ones: their defaults); their values are
// checked by ValidateEngineRequest.
void ApplySampling(const v1::SamplingOptions& s, EngineRequest& out) {
  // Beyond INT_MAX nothing fits any context anyway; the clamp keeps the int conversion exact.
  auto to_int = [](uint32_t v) {
    return static_cast<int>(std::min<uint32_t>(v, std::numeric_limits<int>::max()));
  };
  out.max_new_tokens = to_int(s.has_max_new_tokens() ? s.max_new_tokens() : kDefaultMaxNewTokens);
  out.min_new_tokens = to_int(s.min_new_tokens());
  SamplingParams& p = out.sampling;
  p.temperature = s.has_temperature() ? s.temperature() : kDefaultTemperature;
  p.top_k = to_int(s.top_k());  // beyond the vocabulary means "off" (vLLM)
  p.top_p = s.has_top_p() ? s.top_p() : 1.0f;
  p.min_p = s.min_p();
  p.repetition_penalty = s.has_repetition_penalty() ? s.repetition_penalty() : 1.0f;
  p.presence_penalty = s.presence_penalty();
  p.frequency_penalty = s.frequency_penalty();
  if (s.has_seed()) p.seed = s.seed();
  out.stop.assign(s.stop().begin(), s.stop().end());
  out.stop_token_ids.assign(s.stop_token_ids().begin(), s.stop_token_ids().end());
  out.ignore_eos = s.ignore_eos();
  out.logprobs = to_int(s.logprobs());  // also capped by CheckRequestLimits
}

// The proto path of an engine request field (ValidateEngineRequest's names).
std::string ApiFieldPath(absl::string_view path, const v1::GenerateRequest& r) {
  absl::string_view rest = path;
  if (absl::ConsumePrefix(&rest, "prompt")) {
    switch (r.prompt_case()) {
      case v1::GenerateRequest::kTokenIds:
        return absl::StrCat("token_ids.ids", rest);
      case v1::GenerateRequest::kText:
        return "text";
      case v1::GenerateRequest::kChat:
        return "chat";
      case v1::GenerateRequest::PROMPT_NOT_SET:
        break;
    }
    return std::string(path);
  }
  if (absl::StartsWith(path, "kv_policy")) return ApiKvFieldPath(path, r.kv_policy());
  if (absl::StartsWith(path, "sampling.")) return std::string(path);
  // Every other engine field is one of SamplingOptions'.
  return absl::StrCat("sampling.", path);
}

}  // namespace

absl::Status ToApiStatus(const absl::Status& status, const v1::GenerateRequest& request) {
  return RenameField(status,
                     [&request](absl::string_view path) { return ApiFieldPath(path, request); });
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
  ApplySampling(request.sampling(), out);
  KVSERVE_ASSIGN_OR_RETURN(
      out.kv_policy,
      ToKvPolicyOptions(request.kv_policy(), {.default_policy = context.default_kv_policy,
                                              .page_size = context.kv_page_size}));
  KVSERVE_RETURN_IF_ERROR(
      ToApiStatus(ValidateEngineRequest(out, context.config, context.tokenizer), request));
  return out;
}

}  // namespace kvserve::server
