#include "engine/sampling/token_history.h"

namespace kvserve {

TokenHistory::TokenHistory(std::span<const int32_t> prompt) {
  for (int32_t token : prompt) entries_[token].in_prompt = true;
}

void TokenHistory::AddOutput(int32_t token) {
  ++entries_[token].output_count;
  ++num_output_tokens_;
}

bool TokenHistory::InPrompt(int32_t token) const {
  auto it = entries_.find(token);
  return it != entries_.end() && it->second.in_prompt;
}

int32_t TokenHistory::OutputCount(int32_t token) const {
  auto it = entries_.find(token);
  return it == entries_.end() ? 0 : it->second.output_count;
}

}  // namespace kvserve
