#pragma once

#include "CLI/CLI.hpp"
#include "engine/kv/kv_policy.h"

namespace kvserve {

// The SnapKV/FastKV prefill options the benchmarks share (--kv-budget, --kv-retain-rate,
// --kv-tsp-rate, --kv-tsp-layer), bound to `kv`.
inline void AddKvPrefillOptions(CLI::App& app, KvPolicyOptions& kv) {
  app.add_option("--kv-budget", kv.budget, "snapkv/fastkv: constant KV budget (0: retain rate)")
      ->capture_default_str();
  app.add_option("--kv-retain-rate", kv.retain_rate, "snapkv/fastkv: ρ")->capture_default_str();
  app.add_option("--kv-tsp-rate", kv.tsp_rate, "fastkv: τ")->capture_default_str();
  app.add_option("--kv-tsp-layer", kv.tsp_layer, "fastkv: TSP layer (-1: n_layers / 2 - 1)")
      ->capture_default_str();
}

}  // namespace kvserve
