#pragma once

#include <cstdint>
#include <span>

namespace kvserve {

// The character classes the BPE pre-tokenizer regexes distinguish: \p{L}, \p{N} and \s (Unicode
// White_Space); everything else, including invalid UTF-8, is kOther.
enum class CodepointClass : uint8_t { kOther = 0, kLetter = 1, kNumber = 2, kWhitespace = 3 };

CodepointClass ClassifyCodepoint(char32_t cp);

inline bool IsLetter(char32_t cp) { return ClassifyCodepoint(cp) == CodepointClass::kLetter; }
inline bool IsNumber(char32_t cp) { return ClassifyCodepoint(cp) == CodepointClass::kNumber; }
inline bool IsWhitespace(char32_t cp) {
  return ClassifyCodepoint(cp) == CodepointClass::kWhitespace;
}

// The generated table (unicode_category_runs.cc, from tools/gen_unicode_tables.py): sorted runs,
// each (first codepoint << 8) | CodepointClass, lasting until the next run starts.
std::span<const uint32_t> UnicodeCategoryRuns();

}  // namespace kvserve
