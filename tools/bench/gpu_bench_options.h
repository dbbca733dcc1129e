#pragma once

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "engine/kv/kv_policy_options.h"
#include "engine/runtime/backend_factory.h"
#include "nlohmann/json.hpp"
#include "tools/bench/policy_decode.h"
#include "tools/bench/policy_prefill.h"

namespace kvserve::bench {

// kvserve-gpu-bench's flags (tools/bench/gpu_bench.cc documents them).
struct GpuBenchOptions {
  std::string model = "synthetic:llama-3.1-8b";
  std::string tokenizer;
  uint64_t synthetic_seed = 0;
  double gpu_memory_fraction = kDefaultGpuMemoryFraction;
  bool cuda_graphs = true;  // decode steps as CUDA graphs (the server's --cuda-graphs)
  std::vector<int> prefill_lengths = {1024, 8192, 32768};
  std::vector<int> decode_batches = {1, 8, 32, 64};
  std::vector<int> decode_contexts = {1024, 8192, 32768};
  int decode_steps = 32;               // timed decode steps per (batch, context)
  int repeats = 5;                     // timed runs per prefill length, kernel or GEMM shape
  int page_size = kDefaultKvPageSize;  // KV page size in tokens, as the scheduler's default
  double hbm_gbps = 3350;              // the device's memory bandwidth: H100 SXM's HBM3
  bool gemm_check = false;
  // Which benchmarks run: prefill, decode, prefill_attention, policy_prefill (--kv-policy adds
  // it), policy_decode (--decode-policy adds it).
  std::vector<std::string> benches = {"prefill", "decode", "prefill_attention"};
  PolicyPrefillOptions policy;        // --kv-policy and its options (policy_prefill.h)
  PolicyDecodeOptions policy_decode;  // --decode-policy and its options (policy_decode.h)

  bool runs(std::string_view bench) const {
    return std::find(benches.begin(), benches.end(), bench) != benches.end();
  }
};

// Prints one JSON line: `common` (impl, model, device, ...) with `fields` added. Flushed at once,
// so a run cut short by a time limit keeps every measurement taken so far.
inline void Emit(const nlohmann::json& common, const nlohmann::json& fields) {
  nlohmann::json line = common;
  line.update(fields);
  std::cout << line.dump() << std::endl;
}

}  // namespace kvserve::bench
