#pragma once

#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "engine/model/loaded_model.h"
#include "engine/scheduler/batch_generator.h"
#include "tools/cli/kv_policy_flags.h"

namespace kvserve::cli {

// What to generate: the request flags `generate` (and later `client`) share.
struct RequestOptions {
  std::string prompt;
  std::vector<int32_t> prompt_ids;
  bool chat = false;  // treat --prompt as a user message under the model's chat template
  std::string system;
  int max_tokens = 64;
  SamplingParams sampling;
  int64_t seed = -1;
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  KvPolicyFlags kv;  // --kv-policy and its --kv-* options
};
void AddRequestOptions(CLI::App& app, RequestOptions& options);

// Tokenizes the prompt (BOS added to text when the model wants it; ids used as given) and checks
// the KV policy and its options against the model. Errors name the offending flag
// ("--kv-tsp-rate must be in (0, 1], got 1.5").
absl::StatusOr<GenerationRequest> BuildRequest(const RequestOptions& options,
                                               const LoadedModel& model);

}  // namespace kvserve::cli
