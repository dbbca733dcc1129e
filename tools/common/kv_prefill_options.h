#pragma once

#include <string_view>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "engine/kv/kv_policy_options.h"

namespace kvserve {

// The SnapKV/FastKV prefill options the benchmarks share (--kv-budget, --kv-retain-rate,
// --kv-tsp-rate, --kv-tsp-layer), bound to `kv`: one set for every policy a benchmark runs.
inline void AddKvPrefillOptions(CLI::App& app, FastKvOptions& kv) {
  app.add_option("--kv-budget", kv.budget, "snapkv/fastkv: constant KV budget (0: retain rate)")
      ->capture_default_str();
  app.add_option("--kv-retain-rate", kv.retain_rate, "snapkv/fastkv: ρ")->capture_default_str();
  app.add_option("--kv-tsp-rate", kv.tsp_rate, "fastkv: τ")->capture_default_str();
  app.add_option("--kv-tsp-layer", kv.tsp_layer, "fastkv: TSP layer (-1: n_layers / 2 - 1)")
      ->capture_default_str();
}

// `policy`'s options: its defaults, with each option `shared` has and the policy has too
// (fastkv_freekv takes the scoring and TSP options; quest and freekv none).
inline absl::StatusOr<KvPolicyOptions> PrefillPolicyOptions(std::string_view policy,
                                                            const FastKvOptions& shared) {
  absl::StatusOr<KvPolicyKind> kind = ParseKvPolicyKind(policy);
  if (!kind.ok()) return kind.status();
  KvPolicyOptions options = DefaultKvPolicyOptions(*kind);
  const KvPolicyOptions given = shared;
  for (std::string_view name : KvOptionNames(*kind)) {
    // A tiered policy's budget is GPU tokens, not a prompt budget: its own default stays.
    if (name == "budget" && IsTiered(*kind)) continue;
    if (auto value = GetKvOption(given, name)) {
      if (absl::Status s = SetKvOption(options, name, *value); !s.ok()) return s;
    }
  }
  return options;
}

}  // namespace kvserve
