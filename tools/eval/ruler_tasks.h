#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/tokenizer.h"

namespace kvserve::eval {

// RULER-style synthetic long-context tasks (research/ruler.md), regenerated deterministically from
// (task, length, case index, seed), each one chat turn of the default model:
//   passkey_user     the passkey intro ("There is an important info hidden..."), technical filler
//                    with "The pass key is NNNNN. Remember it." once, "What is the pass key?", and
//                    nothing in the assistant's turn: the prompt a user would write
//   niah_single      one key → value needle; fillers essay / technical / code and values
//                    number / dashed code / word / UUID by case; RULER's answer prefix
//   niah_multikey    four needles with different keys (three distractors), one asked
//   niah_multivalue  four values under one key, all asked (partial credit)
//   vt               variable tracking: a 4-hop chain VAR B = VAR A ... in noise, every name asked
//   cwe              the 10 most common words of a list (partial credit)
//   qa               a question answered by one sentence of a long essay-like document
std::vector<std::string> RulerTaskNames();

struct TaskSpec {
  std::string task;
  int target_tokens = 4096;  // prompt + answer budget, as RULER counts max_seq_length
  int index = 0;             // case number within (task, length)
  int seed = 0;
};

struct TaskPrompt {
  std::vector<int32_t> ids;             // chat-templated, BOS when the tokenizer adds one
  std::vector<std::string> references;  // every one must appear in the answer
  int answer_tokens = 32;               // generation budget
  std::string variant;                  // e.g. "essay/uuid"
  std::vector<int> depth_percent;       // where the needles went
};

// InvalidArgument for an unknown task or a length that holds no filler.
absl::StatusOr<TaskPrompt> BuildTaskPrompt(const Tokenizer& tokenizer,
                                           const std::string& chat_template, const TaskSpec& spec);

// The prompt positions of `reference`'s tokens (its first occurrence, encoded alone or after a
// space); empty when its tokens do not occur as a run.
std::vector<int32_t> ReferencePositions(const Tokenizer& tokenizer, std::span<const int32_t> ids,
                                        const std::string& reference);

// RULER's string_match_all: the fraction of `references` found in `answer`, case-insensitively.
double ReferenceScore(const std::string& answer, const std::vector<std::string>& references);

}  // namespace kvserve::eval
