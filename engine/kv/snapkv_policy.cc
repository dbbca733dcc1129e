#include "engine/kv/snapkv_policy.h"

#include <algorithm>

#include "engine/kv/snapkv_selection.h"

namespace kvserve {

SnapKvPolicy::SnapKvPolicy(const SnapKvOptions& options, const ModelConfig& config)
    : options_(options), n_layers_(config.n_layers) {}

PromptCompressionPlan SnapKvPolicy::PlanPrompt(int n) {
  PromptCompressionPlan plan{
      .prompt_tokens = n, .pool = options_.pool, .pool_kernel = options_.pool_kernel};
  const int budget = SnapKvBudget(options_, n);
  if (n > budget) {
    plan.layers.assign(n_layers_, {.window = options_.window, .keep = budget});
  }
  plan.tsp_keep = n;
  return plan;
}

}  // namespace kvserve
