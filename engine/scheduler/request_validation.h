#pragma once

#include "absl/status/status.h"
#include "engine/model/model_config.h"
#include "engine/model/tokenizer.h"
#include "engine/scheduler/engine_core.h"

namespace kvserve {

// The most top logprobs a request may ask for per token (vLLM's default cap).
inline constexpr int kMaxLogprobs = 20;

// Checks what a request asks for against the model, before it is queued: InvalidArgument naming
// the field ("prompt token id 99999 is outside the vocabulary [0, 49152)"). `tokenizer` may be
// null: stop strings are then refused. The KV policy is checked as given (no default applied).
absl::Status ValidateEngineRequest(const EngineRequest& request, const ModelConfig& config,
                                   const Tokenizer* tokenizer);

}  // namespace kvserve
