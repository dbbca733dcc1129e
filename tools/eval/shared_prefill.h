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

struct DecodeResult {
  std::vector<int32_t> tokens;  // generated ids, the first from the prefill's logits
  KvStats kv;                   // the configuration's policy's stats at the end
};

// What a request with `options` would generate after `prefill` (greedy, at most `max_new_tokens`,
// stopping after `eos_id`): a fresh policy for `options` plans the prompt; the plan's selection
// runs on each recorded layer's scores as a backend would (SelectPromptRows); its kept rows
// compress a copy of the cache, and its propagated rows must equal the recorded ones (else
// FailedPrecondition: the prefill was not this configuration's). Then decodes on the copy, the
// policy attached, as BatchGenerator does.
absl::StatusOr<DecodeResult> DecodeFromSharedPrefill(Backend& backend, PagePool& pool,
                                                     const SharedPrefill& prefill,
                                                     const KvPolicyOptions& options,
                                                     int max_new_tokens, int32_t eos_id);

}  // namespace kvserve::eval
