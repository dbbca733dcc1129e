#pragma once

#include <istream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/kv/kv_policy.h"
#include "engine/kv/prefill_flops.h"
#include "engine/model/model_config.h"
#include "engine/runtime/backend.h"
#include "nlohmann/json.hpp"

namespace kvserve::bench {

// TTFT of whole-prompt prefills per KV policy, through the engine API every backend serves
// (BatchGenerator, KvPolicyOptions on the request), set beside the FLOP model's prediction
// (engine/kv/prefill_flops.h) and a PyTorch SDPA full prefill measured in the same run
// (tools/bench/torch_reference.py). Backend-agnostic, so the CPU build tests it; kvserve-gpu-bench
// runs it on the CUDA backend.

struct PolicyPrefillOptions {
  std::vector<std::string> policies;  // empty: the benchmark is off
  std::vector<int> prompt_lengths = {8192, 32768};
  int repeats = 3;             // timed runs per (length, policy), after one warm-up run
  FastKvOptions kv;            // options of every policy that has them (PrefillPolicyOptions)
  std::string sdpa_reference;  // torch_reference.py's JSON lines; empty: no SDPA ratios
  std::string sdpa_bench = "prefill";  // which torch line is the SDPA full prefill
};

// Adds --kv-policy, --policy-lengths, --policy-repeats, the --kv-* options and --sdpa-reference /
// --sdpa-bench to `app`.
void AddPolicyPrefillFlags(CLI::App& app, PolicyPrefillOptions& options);

// Checks what the flags cannot: known policy names (kv_policy.h), no name twice, positive lengths
// and repeats. InvalidArgument naming the flag.
absl::Status ValidatePolicyPrefillOptions(const PolicyPrefillOptions& options);

// The rows each layer runs on for `policy`'s prefill of `n` tokens, from the options alone, as
// FastKvPolicy decides them: fastkv runs layers 0..tsp_layer on n rows, gathers T = max(⌊n·τ⌋ or
// tsp_len, window + 1) rows after tsp_layer's attention when n > T and n reaches the policy's
// minimum prompt, and runs the later layers on T. Every other policy runs every layer on n.
std::vector<LayerRows> PredictedPrefillRows(const ModelConfig& config,
                                            const KvPolicyOptions& options, int n);

// The TSP layer the options name (-1: n_layers / 2 - 1, as FastKvPolicy).
int EffectiveTspLayer(const ModelConfig& config, const TspOptions& options);

// One policy's runs at one prompt length: TTFT samples, or the failure that stopped them.
struct PolicyPrefillRun {
  std::string policy;
  int prompt_tokens = 0;
  std::vector<double> ttft_ms;  // timed runs only
  absl::Status status;          // the first failure; no further runs of this policy after it
  KvStats kv;                   // the engine's stats of the last run
};

// For each length, `repeats` + 1 rounds (the first untimed), each drawing one random prompt and
// running every policy on it back to back (one generated token), so drift hits them alike. A
// failing policy gets its status recorded and is skipped from then on; the others go on. Returns
// one run per (length, policy), lengths outer.
std::vector<PolicyPrefillRun> RunPolicyPrefill(Backend& backend,
                                               const PolicyPrefillOptions& options);

// The SDPA full-prefill TTFT per prompt length from torch_reference.py's JSON lines: lines with
// "impl": "torch", "bench": `bench`, a "ttft_ms" and not "skipped". Other lines are ignored;
// a line that is not JSON is an error naming its number.
absl::StatusOr<std::map<int, double>> ReadSdpaTtft(std::istream& in, std::string_view bench);

// The "policy_prefill" JSON line of `run`: TTFT (median, min), the FLOP model's predicted
// fraction and speedup over full, the engine's own fraction, and where given the measured
// speedups over kvserve's full prefill at the same length (`full`) and over PyTorch SDPA
// (`sdpa_ttft_ms`), with measured / predicted. A failed run carries "error" and "error_code"
// and no figures; ratios whose other side failed or is missing are null.
nlohmann::json PolicyPrefillLine(const ModelConfig& config, const FastKvOptions& kv,
                                 const PolicyPrefillRun& run, const PolicyPrefillRun* full,
                                 std::optional<double> sdpa_ttft_ms, std::string_view sdpa_bench);

// Every run's line, in order, each pairing with the "full" run of its length when there is one.
std::vector<nlohmann::json> PolicyPrefillLines(const ModelConfig& config,
                                               const PolicyPrefillOptions& options,
                                               const std::vector<PolicyPrefillRun>& runs,
                                               const std::map<int, double>& sdpa_ttft_ms);

}  // namespace kvserve::bench
