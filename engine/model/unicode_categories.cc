#include "engine/model/unicode_categories.h"

#include <algorithm>

namespace kvserve {

CodepointClass ClassifyCodepoint(char32_t cp) {
  // ASCII dominates typical prompts; answer it without the table search.
  if (cp < 0x80) {
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CodepointClass::kLetter;
    if (cp >= '0' && cp <= '9') return CodepointClass::kNumber;
    if (cp == ' ' || (cp >= '\t' && cp <= '\r')) return CodepointClass::kWhitespace;
    return CodepointClass::kOther;
  }
  if (cp > 0x10FFFF) return CodepointClass::kOther;
  const std::span<const uint32_t> runs = UnicodeCategoryRuns();
  // The last run starting at or before cp; runs[0] starts at U+0000.
  const auto it =
      std::upper_bound(runs.begin(), runs.end(), (static_cast<uint32_t>(cp) << 8) | 0xFF);
  return static_cast<CodepointClass>(*(it - 1) & 0xFF);
}

}  // namespace kvserve
