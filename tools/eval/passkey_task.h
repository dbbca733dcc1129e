#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/tokenizer.h"

namespace kvserve::eval {

// Passkey retrieval: neutral filler sentences with "The pass key is NNNNN. Remember it. NNNNN is
// the pass key." at a depth, the question at the end, a greedy answer.
enum class PromptFormat {
  kPlain,  // intro, haystack, "What is the pass key? The pass key is" as plain text after BOS
  kChat,   // intro, haystack and "What is the pass key?" as the user's message under the model's
           // chat template; the assistant's turn starts "The pass key is"
};

struct PasskeySpec {
  int target_tokens = 1024;  // the prompt is the longest of whole filler blocks within this
  int depth_percent = 50;    // 0: the key is the first line of the haystack; 100: the last
  int seed = 0;
  PromptFormat format = PromptFormat::kPlain;
};

struct PasskeyPrompt {
  std::vector<int32_t> ids;  // BOS included when the tokenizer adds one
  std::string key;           // five digits
  int filler_blocks = 0;
};

// The key depends on (seed, target_tokens, depth_percent) only, so every configuration and every
// rerun sees the same prompt.
std::string PasskeyFor(const PasskeySpec& spec);

// InvalidArgument when not even one filler block fits, or the chat template cannot render.
absl::StatusOr<PasskeyPrompt> BuildPasskeyPrompt(const Tokenizer& tokenizer,
                                                 const std::string& chat_template,
                                                 const PasskeySpec& spec);

// Correct when the key's five digits appear, as one run, in the answer's text.
bool PasskeyCorrect(const std::string& answer, const std::string& key);

}  // namespace kvserve::eval
