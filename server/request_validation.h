#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "engine/kv/kv_policy_options.h"
#include "engine/model/model_config.h"
#include "engine/model/tokenizer.h"
#include "engine/scheduler/engine_core.h"
#include "kvserve/v1/inference.pb.h"
#include "server/request_limits.h"

namespace kvserve::server {

// What a request is checked and tokenized against.
struct RequestContext {
  const ModelConfig& config;
  const Tokenizer* tokenizer;      // null: token-id prompts only (synthetic weights)
  std::string_view chat_template;  // the model's template source; empty when it has none
  const KvPolicyOptions& default_kv_policy;
  const RequestLimits* limits = nullptr;  // null: RequestLimits' defaults
  int max_token_bytes = 0;                // the tokenizer's longest token; 0: measured per call
  int kv_page_size = kDefaultKvPageSize;  // the server's KV page size (tiered policies use it)
};

// Defaults of absent fields (proto3 `optional`): what GenerateRequest documents.
inline constexpr int kDefaultMaxNewTokens = 16;
inline constexpr float kDefaultTemperature = 1.0f;

// The engine request for `request`: a text prompt gets the model's BOS and is tokenized, token ids
// are used as given, a chat is rendered with the model's chat template; absent sampling fields take
// their defaults and the KV policy's absent fields the server's (kv_policy_conversion.h). Then the
// engine's one validation (ValidateEngineRequest) runs, its field paths renamed to the proto's: an
// invalid field is InvalidArgument naming its proto path ("sampling.top_p must be in (0, 1], got
// 1.5"; "kv_policy.fastkv.tsp_rate must ..."). The id and deadline are left to the caller.
absl::StatusOr<EngineRequest> ToEngineRequest(const v1::GenerateRequest& request,
                                              const RequestContext& context);

// `status` (from the engine: ValidateEngineRequest, Scheduler::Submit) with its field path, if
// any, renamed to `request`'s proto path: "max_new_tokens" -> "sampling.max_new_tokens",
// "prompt[2]" -> "token_ids.ids[2]", "kv_policy.window" -> "kv_policy.snapkv.window".
absl::Status ToApiStatus(const absl::Status& status, const v1::GenerateRequest& request);

}  // namespace kvserve::server
