#pragma once

#include "engine/kv/kv_policy.h"

namespace kvserve {

// SnapKV with a GQA-aware cache (DESIGN.md § KV policies): the whole prompt runs through every
// layer; each layer then keeps, per KV head, its top-(B - window) prompt tokens by observation-
// window score plus the window. B is the constant `budget` or ⌊N · retain_rate⌋, at least
// window + 1 (research/fastkv.md §10.1); a prompt of at most B tokens is kept whole and not scored.
class SnapKvPolicy : public KvPolicy {
 public:
  SnapKvPolicy(const SnapKvOptions& options, const ModelConfig& config);

  std::string_view name() const override { return "snapkv"; }
  bool needs_whole_prompt() const override { return true; }
  PromptCompressionPlan PlanPrompt(int n) override;

 private:
  SnapKvOptions options_;
  int n_layers_;
};

}  // namespace kvserve
