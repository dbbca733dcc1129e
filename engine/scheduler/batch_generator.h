#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/kv/kv_policy.h"
#include "engine/kv/kv_policy_options.h"
#include "engine/runtime/backend.h"
#include "engine/sampling/sampling_params.h"
#include "engine/scheduler/engine_core.h"

namespace kvserve {

struct GenerationRequest {
  std::vector<int32_t> prompt;  // used as given (BOS already added, if wanted)
  int max_new_tokens = 16;
  SamplingParams sampling;
  std::vector<int32_t> stop_token_ids;  // besides EOS
  bool ignore_eos = false;
  KvPolicyOptions kv_policy;
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids only
  FinishReason finish_reason = FinishReason::kMaxTokens;
  double prefill_ms = 0;  // first scheduled to the prompt's last chunk done
  double ttft_ms = 0;     // start of the batch to the first generated token
  double decode_ms = 0;   // first token to the last
  KvStats kv;             // the policy's stats; kept_tokens per layer at the end
  double decode_tokens_per_s() const;
};

struct GeneratorOptions {
  int prefill_chunk_tokens = 2048;     // tokens per engine step; bounds activation memory
  int page_size = kDefaultKvPageSize;  // KV page size in tokens
  int32_t eos_id = -1;
};

// Runs a fixed batch of requests to completion on the Scheduler's engine loop (on the calling
// thread): the offline path of the CLI and the benchmarks. The KV pool holds the whole batch, so
// nothing is preempted; every request runs at once (up to one per token of the step budget).
class BatchGenerator {
 public:
  // Called with (request index, token) as each token is sampled.
  using TokenCallback = std::function<void(size_t, int32_t)>;

  BatchGenerator(Backend& backend, GeneratorOptions options);

  // Every request is checked first (prompt not empty, ids in range, fits the context, sampling and
  // kv policy valid); an invalid one fails the call, naming "request <i>: ...", before any work.
  absl::StatusOr<std::vector<GenerationResult>> Generate(
      std::span<const GenerationRequest> requests, const TokenCallback& on_token = nullptr);

 private:
  Backend& backend_;
  GeneratorOptions options_;
};

}  // namespace kvserve
