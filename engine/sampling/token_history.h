#pragma once

#include <cstdint>
#include <span>

#include "absl/container/flat_hash_map.h"

namespace kvserve {

// The tokens a sequence has seen, in the form the penalties need: which ids occur in the prompt and
// how often each id occurs in the output. Sparse (one entry per distinct id), so applying penalties
// costs O(distinct tokens) per step instead of O(vocab), and recording a sampled token is O(1).
class TokenHistory {
 public:
  // What the history knows about one distinct token id.
  struct Entry {
    int32_t output_count = 0;  // occurrences in the output
    bool in_prompt = false;
  };

  TokenHistory() = default;
  explicit TokenHistory(std::span<const int32_t> prompt);

  // Records one generated token.
  void AddOutput(int32_t token);

  bool InPrompt(int32_t token) const;
  int32_t OutputCount(int32_t token) const;
  int64_t num_output_tokens() const { return num_output_tokens_; }

  // Every distinct id seen in the prompt or the output, in no particular order.
  const absl::flat_hash_map<int32_t, Entry>& entries() const { return entries_; }

 private:
  absl::flat_hash_map<int32_t, Entry> entries_;
  int64_t num_output_tokens_ = 0;
};

}  // namespace kvserve
