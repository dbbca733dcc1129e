#include "engine/model/bpe_pre_tokenizer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/model/unicode_categories.h"
#include "engine/model/utf8.h"

namespace kvserve {
namespace {

using Class = CodepointClass;

// One character of the input: where it is and what the regexes see in it.
struct Unit {
  uint32_t offset;
  char32_t cp;
  Class cls;
};

std::vector<Unit> DecodeUnits(std::string_view text) {
  std::vector<Unit> units;
  units.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const Utf8Unit u = DecodeUtf8(text, pos);
    const Class cls =
        u.kind == Utf8Unit::Kind::kValid ? ClassifyCodepoint(u.codepoint) : Class::kOther;
    units.push_back({static_cast<uint32_t>(pos), u.codepoint, cls});
    pos += u.length;
  }
  return units;
}

// The end of the run of `cls` characters starting at i.
size_t RunEnd(const std::vector<Unit>& u, size_t i, size_t end, Class cls) {
  while (i < end && u[i].cls == cls) ++i;
  return i;
}

// Case folding as far as the contractions need it: ASCII, and U+017F long s, which folds to 's'.
char32_t Lower(char32_t cp) {
  if (cp == 0x17F) return 's';
  return cp >= 'A' && cp <= 'Z' ? cp + ('a' - 'A') : cp;
}

// 's|'t|'re|'ve|'m|'ll|'d at i: the end of the match, or i.
size_t MatchContraction(const std::vector<Unit>& u, size_t i, size_t end, bool ignore_case) {
  if (u[i].cp != '\'' || i + 1 >= end) return i;
  const auto at = [&](size_t k) { return ignore_case ? Lower(u[k].cp) : u[k].cp; };
  const char32_t c1 = at(i + 1);
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return i + 2;
  if (i + 2 >= end) return i;
  const char32_t c2 = at(i + 2);
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
    return i + 3;
  }
  return i;
}

// \s+(?!\S)|\s+ at whitespace i: a run of spaces leaves its last one to prefix the next word.
size_t MatchTrailingSpace(size_t i, size_t run_end, size_t end) {
  return run_end == end || run_end - 1 == i ? run_end : run_end - 1;
}

// The end of GPT-2's regex match at i (< end); the regex matches every character, so it is > i.
size_t MatchGpt2(const std::vector<Unit>& u, size_t i, size_t end) {
  if (const size_t k = MatchContraction(u, i, end, /*ignore_case=*/false); k > i) return k;
  // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: one run of a single class, optionally after a
  // space.
  const size_t j = u[i].cp == ' ' && i + 1 < end ? i + 1 : i;
  if (u[j].cls != Class::kWhitespace) return RunEnd(u, j, end, u[j].cls);
  return MatchTrailingSpace(i, RunEnd(u, i, end, Class::kWhitespace), end);
}

bool IsNewline(const Unit& unit) { return unit.cp == '\r' || unit.cp == '\n'; }

size_t MatchLlama3(const std::vector<Unit>& u, size_t i, size_t end) {
  if (const size_t k = MatchContraction(u, i, end, /*ignore_case=*/true); k > i) return k;
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (u[i].cls == Class::kLetter) return RunEnd(u, i, end, Class::kLetter);
  if (u[i].cls != Class::kNumber && !IsNewline(u[i]) && i + 1 < end &&
      u[i + 1].cls == Class::kLetter) {
    return RunEnd(u, i + 1, end, Class::kLetter);
  }
  // \p{N}{1,3}
  if (u[i].cls == Class::kNumber) return std::min(RunEnd(u, i, end, Class::kNumber), i + 3);
  // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
  const size_t j = u[i].cp == ' ' && i + 1 < end ? i + 1 : i;
  if (u[j].cls == Class::kOther) {
    size_t k = RunEnd(u, j, end, Class::kOther);
    while (k < end && IsNewline(u[k])) ++k;
    return k;
  }
  // Whitespace from here on. \s*[\r\n]+: up to and including the run's last newline.
  const size_t run_end = RunEnd(u, i, end, Class::kWhitespace);
  for (size_t k = run_end; k > i; --k) {
    if (IsNewline(u[k - 1])) return k;
  }
  return MatchTrailingSpace(i, run_end, end);
}

}  // namespace

absl::StatusOr<BpePreTokenizer> BpePreTokenizerFromName(std::string_view pre) {
  if (pre.empty() || pre == "gpt2" || pre == "gpt-2") return BpePreTokenizer::kGpt2;
  if (pre == "smollm" || pre == "starcoder" || pre == "refact") return BpePreTokenizer::kDigitsGpt2;
  if (pre == "llama-bpe" || pre == "llama3") return BpePreTokenizer::kLlama3;
  return absl::InvalidArgumentError(absl::StrCat(
      "unsupported BPE pre-tokenizer '", std::string(pre),
      "' (tokenizer.ggml.pre); supported: gpt2, smollm, starcoder, refact, llama-bpe"));
}

std::vector<std::string_view> PreTokenize(BpePreTokenizer kind, std::string_view text) {
  const std::vector<Unit> units = DecodeUnits(text);
  const auto offset = [&](size_t i) { return i < units.size() ? units[i].offset : text.size(); };
  std::vector<std::string_view> pieces;
  const auto emit = [&](size_t begin, size_t end) {
    pieces.push_back(text.substr(offset(begin), offset(end) - offset(begin)));
  };
  // Splits [begin, end) as if it were the whole input (a regex lookahead sees `end` as the end).
  const auto split = [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end;) {
      const size_t k =
          kind == BpePreTokenizer::kLlama3 ? MatchLlama3(units, i, end) : MatchGpt2(units, i, end);
      emit(i, k);
      i = k;
    }
  };
  if (kind != BpePreTokenizer::kDigitsGpt2) {
    split(0, units.size());
    return pieces;
  }
  size_t segment = 0;
  for (size_t i = 0; i < units.size(); ++i) {
    if (units[i].cls != Class::kNumber) continue;
    split(segment, i);
    emit(i, i + 1);
    segment = i + 1;
  }
  split(segment, units.size());
  return pieces;
}

}  // namespace kvserve
