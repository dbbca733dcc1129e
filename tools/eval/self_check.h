#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/runtime/backend.h"
#include "tools/eval/eval_config.h"

namespace kvserve::eval {

// One configuration's shared-prefill result beside the real policy's.
struct SelfCheckResult {
  std::string config;
  std::vector<int32_t> shared_tokens;  // EvaluatePrompt's
  std::vector<int32_t> real_tokens;    // BatchGenerator's, the policy run for real
  bool tokens_equal = false;
  bool stats_equal = false;  // kept tokens per layer, tsp_tokens, prefill_flops_fraction
  bool ok() const { return tokens_equal && stats_equal; }
};

// Checks that evaluating `prompt` through shared prefills (prompt_evaluation.h) gives exactly what
// each configuration's real policy gives when BatchGenerator runs it (the whole prompt in one
// chunk, greedy, at most `max_new_tokens`, stopping after `eos_id`).
absl::StatusOr<std::vector<SelfCheckResult>> SelfCheckPrompt(Backend& backend,
                                                             std::span<const int32_t> prompt,
                                                             std::span<const EvalConfig> configs,
                                                             int max_new_tokens, int32_t eos_id);

}  // namespace kvserve::eval
