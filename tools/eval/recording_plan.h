#pragma once

#include "engine/kv/prompt_compression.h"

namespace kvserve::eval {

using PromptLayerRecord = PromptLayerScores;

// The plan of a prefill that runs as `inner` would (its TSP; `inner` may be empty: full's
// prefill) but keeps every row in the cache and records each layer's window scores, with window
// `window` where `inner` scores none, so one prefill can later be compressed under several KV
// budgets (SharedPrefill).
PromptCompressionPlan RecordingPlan(const PromptCompressionPlan& inner, int prompt_tokens,
                                    int n_layers, int window);

}  // namespace kvserve::eval
