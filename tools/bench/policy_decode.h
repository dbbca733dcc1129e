#pragma once

#include <functional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "engine/kv/kv_policy.h"
#include "engine/kv/kv_policy_options.h"
#include "engine/runtime/backend.h"
#include "nlohmann/json.hpp"

namespace kvserve::bench {

// Decode throughput per KV policy at long context (issue 13's P2, P3): a batch of prompts of
// `context` tokens, each generating `new_tokens`, through the engine API every backend serves
// (BatchGenerator). Tokens per second are counted once every sequence of the batch has its first
// token, so the prefills stay out of it. "freekv_oracle" is freekv whose selected pages are taken
// as resident (the backend's recall gathers nothing): what freekv's step would cost if recall
// were free. Backend-agnostic, so the CPU build tests it; kvserve-gpu-bench runs it on CUDA.

inline constexpr char kFreeKvOracle[] = "freekv_oracle";

struct PolicyDecodeOptions {
  std::vector<std::string> policies;  // empty: the benchmark is off
  int context = 32768;
  std::vector<int> batches = {1, 8};
  int new_tokens = 128;
  int budget = kDefaultTieredBudget;  // the tiered policies' device budget in tokens
  int page_size = kDefaultKvPageSize;
};

// Adds --decode-policy, --decode-context, --decode-batches, --decode-new-tokens and
// --decode-budget to `app`.
void AddPolicyDecodeFlags(CLI::App& app, PolicyDecodeOptions& options);

// Known names (the policies and freekv_oracle), none twice, positive sizes, new_tokens >= 2 (one
// decode step at least). InvalidArgument naming the flag.
absl::Status ValidatePolicyDecodeOptions(const PolicyDecodeOptions& options);

// One policy's run at one batch size.
struct PolicyDecodeRun {
  std::string policy;
  int batch = 0;
  int decode_tokens = 0;  // tokens sampled after every sequence had its first one
  double decode_ms = 0;   // from then to the last token
  absl::Status status;    // the failure that stopped it, if any
  KvStats kv;             // the first sequence's stats at the end
  double tokens_per_s() const { return decode_ms > 0 ? decode_tokens * 1000.0 / decode_ms : 0; }
};

// Switches the backend's recall oracle on or off (CudaBackend::SetRecallOracle); null where the
// backend has none, and freekv_oracle runs then fail alone.
using RecallOracleSwitch = std::function<void(bool)>;

// For each batch size (outer), every policy in turn on the same random prompts. A failure is
// recorded in its run and the others go on.
std::vector<PolicyDecodeRun> RunPolicyDecode(Backend& backend, const PolicyDecodeOptions& options,
                                             const RecallOracleSwitch& oracle);

// The "policy_decode" JSON lines: tokens/s, ms per decode step, the speedup over full at the same
// batch, freekv's step time over the oracle's, and the policy's KV statistics (resident
// fraction, recalled bytes per second of decode, correction rate). A failed run carries "error"
// and "error_code" and no figures; ratios whose other side is missing are null.
std::vector<nlohmann::json> PolicyDecodeLines(const PolicyDecodeOptions& options,
                                              const std::vector<PolicyDecodeRun>& runs);

}  // namespace kvserve::bench
