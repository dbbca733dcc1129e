#pragma once

#include <memory>
#include <string>
#include <vector>

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
//   "mad"     ... over center ± mean-absolute-deviation digests (FreeKV's system code, §4.2;
//             freekv's and fastkv_freekv's default)
//   "minmax"  ... over per-channel min/max digests (Quest's, and its default)
// Several join with '+' ("dense1+mean").
// Tiered policies come wrapped so that the pages each KV head attended over are recorded
// (ResidencyLog below); the others are the engine's. InvalidArgument for an unknown experiment.
absl::StatusOr<std::unique_ptr<KvPolicy>> CreateEvalPolicy(const KvPolicyOptions& options,
                                                           const std::string& experiment,
                                                           const ModelConfig& config);

// Per decode step, layer and KV head, the pages resident when it attended (sorted; empty where
// the layer ran dense): [step][layer][kv_head].
using ResidencyLog = std::vector<std::vector<std::vector<std::vector<int32_t>>>>;
// The log of a policy CreateEvalPolicy made for a tiered configuration; nullptr for the others.
const ResidencyLog* RecordedResidency(const KvPolicy& policy);

}  // namespace kvserve::eval
