#pragma once

#include "absl/status/status.h"
#include "engine/model/model_config.h"
#include "engine/model/tokenizer.h"
#include "engine/scheduler/engine_core.h"

namespace kvserve {

// The most top logprobs a request may ask for per token (vLLM's default cap).
inline constexpr int kMaxLogprobs = 20;

// The one check of what a request asks for against the model, before it is queued (Submit calls
// it; front ends may call it earlier). An invalid field is InvalidArgument carrying the field's
// path in EngineRequest (field_violation.h: "prompt[3]", "max_new_tokens", "sampling.top_p",
// "stop[0]", "kv_policy.tsp_rate") for the front end to rename to its own. `tokenizer` may be
// null: stop strings are then refused. An absent KV policy is not checked (the default is).
absl::Status ValidateEngineRequest(const EngineRequest& request, const ModelConfig& config,
                                   const Tokenizer* tokenizer);

}  // namespace kvserve
