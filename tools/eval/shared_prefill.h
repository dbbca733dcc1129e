#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/kv/kv_policy.h"
#include "engine/kv/page_pool.h"
#include "engine/kv/sequence_kv_cache.h"
#include "engine/runtime/backend.h"
#include "tools/eval/experiment_policies.h"
#include "tools/eval/recording_plan.h"

namespace kvserve::eval {

// One prompt prefilled once, uncompressed, with every layer's window scores recorded: the shared
// start of several KV configurations. SnapKV's prefill computation does not depend on its budget
// (each layer attends over its full K/V; the budget only decides what stays cached), and FastKV's
// (TSP) does not depend on its KV budget either, so a `full` prefill serves full and every snapkv
// configuration, and one FastKV prefill every fastkv configuration with the same TSP options.
struct SharedPrefill {
  std::vector<int32_t> prompt;
  std::unique_ptr<SequenceKvCache> kv;  // every row each layer ran on
  std::vector<PromptLayerRecord> layers;
  std::vector<float> logits;  // of the prompt's last token
  double prefill_ms = 0;
  KvStats stats;  // the prefill policy's (tsp_tokens, prefill_flops_fraction)
};

// Prefills `prompt` in one whole-prompt chunk under `tsp_policy` (nullptr: full), recording every
// layer's scores with observation window `window`; the cache's pages come from `pool`.
absl::StatusOr<SharedPrefill> RunSharedPrefill(Backend& backend, PagePool& pool,
                                               std::span<const int32_t> prompt,
                                               std::unique_ptr<KvPolicy> tsp_policy, int window);

// One configuration's state after `prefill`: a fresh policy for its options plans the prompt; the
// plan's selection runs on each recorded layer's scores as a backend would (SelectPromptRows); its
// kept rows compressed a copy of the cache and its propagated rows equal the recorded ones (else
// FailedPrecondition: the prefill was not this configuration's). Then tokens step through it one at
// a time at their logical positions, the policy attached, as BatchGenerator decodes.
class PrefilledConfig {
 public:
  static absl::StatusOr<std::unique_ptr<PrefilledConfig>> Create(
      Backend& backend, PagePool& pool, const SharedPrefill& prefill,
      const KvPolicyOptions& options, const std::string& experiment = "");
  // The logits after `token`, fed at the next position (the prompt's length, then one more each).
  absl::Status Step(int32_t token, std::vector<float>* logits);
  KvStats Stats() const { return policy_->Stats(*kv_); }
  const KvPolicy& policy() const { return *policy_; }
  // Per layer and KV head, the prompt positions the policy's `retain` kept (empty: the layer kept
  // every row it ran on); positions, not rows, so layers after TSP compare with the prompt.
  const std::vector<std::vector<std::vector<int32_t>>>& retained() const { return retained_; }

 private:
  PrefilledConfig() = default;
  Backend* backend_ = nullptr;
  std::unique_ptr<KvPolicy> policy_;
  std::unique_ptr<PagePool> own_pool_;
  std::unique_ptr<SequenceKvCache> kv_;
  int32_t next_position_ = 0;
  std::vector<std::vector<std::vector<int32_t>>> retained_;
};

struct DecodeResult {
  std::vector<int32_t> tokens;  // generated ids, the first from the prefill's logits
  KvStats kv;                   // the configuration's policy's stats at the end
  std::vector<std::vector<std::vector<int32_t>>> retained;  // PrefilledConfig::retained()
  ResidencyLog residency;  // tiered: the pages each step attended over (experiment_policies.h)
};

// What a request with `options` and `experiment` (experiment_policies.h; "" for none) would
// generate after `prefill` (greedy, at most `max_new_tokens`, stopping after `eos_id`), through
// PrefilledConfig. No default for `experiment`: a configuration's variant must not be dropped.
absl::StatusOr<DecodeResult> DecodeFromSharedPrefill(Backend& backend, PagePool& pool,
                                                     const SharedPrefill& prefill,
                                                     const KvPolicyOptions& options,
                                                     int max_new_tokens, int32_t eos_id,
                                                     const std::string& experiment);

}  // namespace kvserve::eval
