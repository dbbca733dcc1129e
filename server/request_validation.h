#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "engine/kv/kv_policy.h"
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
};

// Defaults of absent fields (proto3 `optional`): what GenerateRequest documents.
inline constexpr int kDefaultMaxNewTokens = 16;
inline constexpr float kDefaultTemperature = 1.0f;

// The engine request for `request`: a text prompt gets the model's BOS and is tokenized, token ids
// are used as given, a chat is rendered with the model's chat template; absent sampling fields take
// their defaults and the KV policy's absent fields the policy's (an empty name: the server's
// default policy with its options). Every invalid field is InvalidArgument naming it by its proto
// path ("sampling.top_p must be in (0, 1], got 1.5"). The id and deadline are left to the caller.
absl::StatusOr<EngineRequest> ToEngineRequest(const v1::GenerateRequest& request,
                                              const RequestContext& context);

// The KV options `policy` asks for on top of `defaults` (used when its name is empty), checked
// against the model; errors name kv_policy.FIELD.
// The engine names a KV option "kv OPTION ..." (ValidateKvPolicyOptions, the scheduler's
// admission); the API's field is kv_policy.OPTION (and the policy itself kv_policy.name).
absl::Status KvFieldStatus(const absl::Status& status);

absl::StatusOr<KvPolicyOptions> ToKvPolicyOptions(const v1::KvPolicy& policy,
                                                  const KvPolicyOptions& defaults,
                                                  const ModelConfig& config);

}  // namespace kvserve::server
