#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/kv/kv_policy.h"

namespace kvserve::eval {

// One KV configuration the evaluation compares: a label and the policy options it stands for.
//   full           dense KV
//   snapkv         SnapKV at the paper's default, ρ = 0.1 (research/fastkv.md §6)
//   snapkv-B       SnapKV with the constant budget of B tokens per layer
//   fastkv         FastKV at the v3 defaults: τ = 0.2, ρ = 0.1, ℓ_T = L/2 - 1
//   fastkv-B       FastKV with τ = 0.2 and the constant KV budget of B tokens per layer
//   quest, freekv, fastkv_freekv      at the FreeKV defaults: GPU budget 2048 tokens per layer
//                                     and KV head (sink 512, recent 512), page 32, τ = 0.8
//   quest-B, freekv-B, fastkv_freekv-B   GPU budget B, sink = recent = B / 4 (at least a page)
//   ...-BpP, ...-BtT, ...-BpPtT           the same with pages of P tokens (default 32) or the
//                                        correction threshold τ = T (default 0.8)
// Every other option keeps KvPolicyOptions' default (window 8, max pool of 7).
struct EvalConfig {
  std::string label;
  KvPolicyOptions options;
};

// The set: full; snapkv and fastkv at the defaults and at budgets 128, 256 and 512.
std::vector<std::string> DefaultConfigLabels();
// Issue #5's: quest (2048, 512); freekv and fastkv_freekv at the defaults and at GPU budgets
// 128, 256, 512 (sink and recent a quarter each, as in the 2048 default).
std::vector<std::string> TieredConfigLabels();

// Parses a label as above; InvalidArgument naming it otherwise.
absl::StatusOr<EvalConfig> ParseEvalConfig(const std::string& label);

}  // namespace kvserve::eval
