#pragma once

#include <optional>
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
//   ...-BsS, ...-rRsS                     sink = recent = S tokens (whole pages) instead of a
//                                        quarter of the budget each: FreeKV's long-input 128
//   NAME-rR        a budget of R (0 < R <= 1) times each prompt's length: snapkv/fastkv ρ = R
//                  (fastkv's τ raised to R where R > 0.2); tiered GPU budget ⌊R·N⌋ in whole
//                  pages, sink = recent = a quarter (also with pP / tT as above)
//   tiered labels may end in kK after the budget (or sS): a sink of K tokens only, the recent
//   window as before (freekv-r0.25k32p16);
//   then in dN: the first N layers decode densely (experiment_policies.h),
//   then in +mean, +max, +mad, +minmax: page scoring variants (experiment_policies.h):
//   quest-r0.25+mean
//   snapkv/fastkv labels may end in wW (observation window W, default 8), avg (average pooling,
//   the v1/v2 scripts', default max): snapkv-r0.1w32avg, snapkv-w32; fastkv's before them in
//   tT (TSP rate τ = T, as named: no longer raised to R): fastkv-r0.25t0.5
// Every other option keeps KvPolicyOptions' default (window 8, max pool of 7).
struct EvalConfig {
  std::string label;
  KvPolicyOptions options;
  float ratio = 0;         // NAME-rR: R, resolved per prompt by ForPrompt
  int sink_recent = 0;     // NAME-…sS: S; 0: a quarter of the budget each
  int sink = 0;            // NAME-…kK: the sink alone is K tokens (recent as above); 0: as above
  std::string experiment;  // an evaluation-only policy variant (experiment_policies.h)
};

// The options `config` runs with on a prompt of `prompt_tokens`, or nullopt where a tiered
// policy's GPU budget would hold the whole prompt: it then decodes densely and cannot differ from
// full, so the sweeps do not count it (issue 17).
std::optional<KvPolicyOptions> ForPrompt(const EvalConfig& config, int prompt_tokens);

// The set: full; snapkv and fastkv at the defaults and at budgets 128, 256 and 512.
std::vector<std::string> DefaultConfigLabels();
// Issue #5's: quest (2048, 512); freekv and fastkv_freekv at the defaults and at GPU budgets
// 128, 256, 512 (sink and recent a quarter each, as in the 2048 default).
std::vector<std::string> TieredConfigLabels();

// Issue 17's sweep, sized for about an hour on 2 cores: full; snapkv and fastkv at the defaults
// (ρ = 0.1); fastkv at ρ = 0.25 and at 512; quest, freekv and fastkv_freekv at ¼ of each prompt,
// each also with center ± MAD digests (+mad, FreeKV's system code); fastkv_freekv at 512 (tiered
// ones below each prompt only).
std::vector<std::string> SuiteConfigLabels();
// --quick's: full, snapkv, fastkv, fastkv-r0.25 and the three tiered policies at ¼ of the prompt,
// freekv also with +mad.
std::vector<std::string> QuickConfigLabels();

// Parses a label as above; InvalidArgument naming it otherwise.
absl::StatusOr<EvalConfig> ParseEvalConfig(const std::string& label);

}  // namespace kvserve::eval
