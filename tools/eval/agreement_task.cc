#include "tools/eval/agreement_task.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "engine/model/chat_template.h"
#include "engine/model/prompt_encoding.h"

namespace kvserve::eval {

std::vector<AgreementSource> DefaultAgreementSources() {
  const std::string dir = "/usr/share/common-licenses/";
  return {{dir + "GPL-3", 4000},    {dir + "LGPL-2.1", 3500},  {dir + "MPL-1.1", 3000},
          {dir + "GFDL-1.3", 2500}, {dir + "GPL-2", 2000},     {dir + "MPL-2.0", 1500},
          {dir + "Artistic", 1200}, {dir + "Apache-2.0", 1000}};
}

absl::StatusOr<AgreementSource> ParseAgreementSource(const std::string& spec) {
  const size_t colon = spec.rfind(':');
  AgreementSource source;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(spec.substr(colon + 1), &source.target_tokens) ||
      source.target_tokens <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("agreement prompt '", spec, "' is not PATH:TOKENS"));
  }
  source.path = spec.substr(0, colon);
  return source;
}

absl::StatusOr<AgreementPrompt> BuildAgreementPrompt(const Tokenizer& tokenizer,
                                                     const std::string& chat_template,
                                                     const std::string& document,
                                                     int target_tokens) {
  std::vector<size_t> line_ends;  // offset just past each line's newline
  for (size_t i = 0; i < document.size(); ++i) {
    if (document[i] == '\n') line_ends.push_back(i + 1);
  }
  if (document.empty() || document.back() != '\n') line_ends.push_back(document.size());
  const ChatTemplate chat(chat_template);
  auto tokens = [&](int lines) -> absl::StatusOr<std::vector<int32_t>> {
    const std::string excerpt = document.substr(0, lines == 0 ? 0 : line_ends[lines - 1]);
    const ChatMessage message{
        .role = "user",
        .content = absl::StrCat("Summarize the following document.\n\n", excerpt,
                                "\n\nSummarize the document above in a few sentences.")};
    auto text = chat.Apply(std::span(&message, 1), /*add_generation_prompt=*/true);
    if (!text.ok()) return text.status();
    return EncodePromptText(tokenizer, *text);
  };
  // The most lines that fit: prompt length grows with the line count, so bisect.
  int lo = 0, hi = static_cast<int>(line_ends.size());
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    auto ids = tokens(mid);
    if (!ids.ok()) return ids.status();
    if (static_cast<int>(ids->size()) <= target_tokens) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  if (lo == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("agreement: not one line of the document fits in ", target_tokens, " tokens"));
  }
  auto ids = tokens(lo);
  if (!ids.ok()) return ids.status();
  return AgreementPrompt{.ids = *std::move(ids), .document_lines = lo};
}

double TokenAgreement(std::span<const int32_t> reference, std::span<const int32_t> tokens, int n) {
  if (n <= 0) return 1.0;
  int equal = 0;
  for (int i = 0; i < n; ++i) {
    const bool ref_ended = i >= static_cast<int>(reference.size());
    const bool ended = i >= static_cast<int>(tokens.size());
    if (ref_ended || ended) {
      equal += ref_ended && ended ? 1 : 0;
    } else {
      equal += reference[i] == tokens[i] ? 1 : 0;
    }
  }
  return static_cast<double>(equal) / n;
}

}  // namespace kvserve::eval
