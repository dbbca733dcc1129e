#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/tokenizer.h"

namespace kvserve::eval {

// Agreement with `full`: natural prompts (a document excerpt to summarize, under the model's chat
// template), the first greedy tokens of each KV configuration compared position by position.

struct AgreementSource {
  std::string path;  // a plain-text document
  int target_tokens = 2048;
};

// The set: Debian's license texts in /usr/share/common-licenses (verbatim copies may be
// made and used freely), 1000-4000 tokens each.
std::vector<AgreementSource> DefaultAgreementSources();

// Parses "PATH:TOKENS".
absl::StatusOr<AgreementSource> ParseAgreementSource(const std::string& spec);

struct AgreementPrompt {
  std::vector<int32_t> ids;  // BOS included when the tokenizer adds one
  int document_lines = 0;    // lines of the document the excerpt holds
};

// "Summarize the following document." + the longest whole-line prefix of `document` that keeps
// the prompt within `target_tokens` + "Summarize the document above in a few sentences.", as the
// user's message, with the assistant's turn opened.
absl::StatusOr<AgreementPrompt> BuildAgreementPrompt(const Tokenizer& tokenizer,
                                                     const std::string& chat_template,
                                                     const std::string& document,
                                                     int target_tokens);

// The fraction of the first `n` positions where `tokens` equals `reference`. A sequence that ended
// (EOS) before `n` counts as ended at each later position: equal only where both have ended.
double TokenAgreement(std::span<const int32_t> reference, std::span<const int32_t> tokens, int n);

}  // namespace kvserve::eval
