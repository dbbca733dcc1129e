#pragma once

#include <cstdint>
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
// from it (greedy, at most `max_new_tokens`, stopping after `eos_id`).
absl::StatusOr<PromptOutcome> EvaluatePrompt(Backend& backend, PagePool& pool,
                                             std::span<const int32_t> prompt,
                                             std::span<const EvalConfig> configs,
                                             int max_new_tokens, int32_t eos_id);

}  // namespace kvserve::eval
