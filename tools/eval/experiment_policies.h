#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/kv/kv_policy.h"

namespace kvserve::eval {

// Evaluation-only variants of the engine's policies, for issue 17's investigation: each differs
// from the engine's in one choice the papers' code makes differently, so the suite can measure the
// choice before anyone changes engine/kv.
//   "denseN"  a tiered policy (quest, freekv, fastkv_freekv) whose first N layers decode densely
//             over the whole KV, as Quest's code does for its first two layers and FreeKV's
//             accuracy harness for layer 0 (research/freekv.md §4.1); the rest as the engine does
//   "mean"    a tiered policy scoring pages by the group mean of raw Quest bounds (FreeKV's
//             system code) instead of MeanS (research/freekv.md §4.3)
//   "max"     ... by the group max of raw bounds (maxS: Quest's code, FreeKV's baseline)
//   "mad"     ... over center ± mean-absolute-deviation digests (FreeKV's system code, §4.2)
// Several join with '+' ("dense1+mean").
// Returns the engine's policy for an empty `experiment`; InvalidArgument for an unknown one.
absl::StatusOr<std::unique_ptr<KvPolicy>> CreateEvalPolicy(const KvPolicyOptions& options,
                                                           const std::string& experiment,
                                                           const ModelConfig& config);

}  // namespace kvserve::eval
