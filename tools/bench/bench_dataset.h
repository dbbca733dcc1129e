#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace kvserve::bench {

// One request of a load test: a prompt (token ids or text the server tokenizes), how many tokens
// to generate, and the KV policy it asks for ("" = the server's default).
struct BenchRequest {
  std::vector<int32_t> prompt_ids;
  std::string prompt_text;  // used when prompt_ids is empty
  int input_len = 0;        // known for id prompts; text prompts learn it from the server
  int output_len = 0;
  std::string kv_policy;
};

// `vllm bench serve`'s datasets, adapted to a gRPC server that takes token ids.
struct DatasetOptions {
  std::string name = "random";  // random | long | jsonl | sharegpt
  int num_prompts = 200;
  uint64_t seed = 0;
  // random: lengths uniform in [len * (1 - ratio), len * (1 + ratio)], random token ids.
  int random_input_len = 1024;
  int random_output_len = 128;
  double random_range_ratio = 0.0;
  // long: prompts of long_min_len..long_max_len random ids (long-context serving), capped by the
  // model's context.
  int long_min_len = 8192;
  int long_max_len = 32768;
  // jsonl: one {"prompt": TEXT, "output_len": N} per line; sharegpt: a JSON array (or JSONL) of
  // {"conversations": [{"from": "human", "value": ...}, {"from": "gpt", "value": ...}, ...]}, the
  // first human turn the prompt and the reply's length / 4 characters per token the output length.
  std::string path;
  int fixed_output_len = 0;  // overrides each entry's output length when > 0
};

// Requests for the dataset; `vocab_size` bounds random ids, `context_length` the lengths.
absl::StatusOr<std::vector<BenchRequest>> BuildDataset(const DatasetOptions& options,
                                                       int vocab_size, int context_length);

// "full:2,freekv:1": each request draws a policy with these weights (seeded, reproducible).
absl::StatusOr<std::vector<std::pair<std::string, double>>> ParsePolicyMix(const std::string& mix);
void AssignPolicies(const std::vector<std::pair<std::string, double>>& mix, uint64_t seed,
                    std::vector<BenchRequest>& requests);

}  // namespace kvserve::bench
