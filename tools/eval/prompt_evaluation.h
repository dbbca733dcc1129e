#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/kv/page_pool.h"
#include "engine/runtime/backend.h"
#include "tools/eval/eval_config.h"
#include "tools/eval/shared_prefill.h"

namespace kvserve::eval {

// The configurations that can share one prefill (shared_prefill.h): full and every snapkv with the
// same window share a full prefill; fastkv configurations share one FastKV prefill when their TSP
// options (layer, rate or length, window, pooling) agree.
std::string PrefillGroup(const KvPolicyOptions& options);

struct PromptOutcome {
  // Per prefill group: "full" or "fastkv" (the group's policy name), its prefill time and stats.
  struct Prefill {
    double ms = 0;
    KvStats stats;
  };
  std::map<std::string, Prefill> prefills;
  std::map<std::string, DecodeResult> results;  // by config label
};

// Runs `prompt` under every configuration: one prefill per group, then each configuration's decode
// from it (greedy, at most `max_new_tokens`, stopping after `eos_id`). A configuration whose
// budget covers the prompt (ForPrompt) gets no result.
absl::StatusOr<PromptOutcome> EvaluatePrompt(Backend& backend, PagePool& pool,
                                             std::span<const int32_t> prompt,
                                             std::span<const EvalConfig> configs,
                                             int max_new_tokens, int32_t eos_id);

// The general form: one prefill per group, then `visit(config, its options for this prompt, the
// group's prefill)` for each configuration ForPrompt does not skip, in the order given within each
// group. Prefill times and stats go to *prefills.
using ConfigVisitor =
    std::function<absl::Status(const EvalConfig&, const KvPolicyOptions&, const SharedPrefill&)>;
absl::Status ForEachConfig(Backend& backend, PagePool& pool, std::span<const int32_t> prompt,
                           std::span<const EvalConfig> configs, const ConfigVisitor& visit,
                           std::map<std::string, PromptOutcome::Prefill>* prefills);

}  // namespace kvserve::eval
