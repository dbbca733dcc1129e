#include "engine/model/unicode_categories.h"

#include <gtest/gtest.h>

namespace kvserve {
namespace {

using Class = CodepointClass;

TEST(UnicodeCategoriesTest, Ascii) {
  EXPECT_EQ(ClassifyCodepoint('a'), Class::kLetter);
  EXPECT_EQ(ClassifyCodepoint('Z'), Class::kLetter);
  EXPECT_EQ(ClassifyCodepoint('7'), Class::kNumber);
  for (const char32_t cp : {U' ', U'\t', U'\n', U'\v', U'\f', U'\r'}) {
    EXPECT_EQ(ClassifyCodepoint(cp), Class::kWhitespace) << static_cast<uint32_t>(cp);
  }
  for (const char32_t cp : {U'!', U'\'', U'_', U'~', U'\0', U'\x1C', U'\x7F'}) {
    EXPECT_EQ(ClassifyCodepoint(cp), Class::kOther) << static_cast<uint32_t>(cp);
  }
}

TEST(UnicodeCategoriesTest, LettersOfManyScripts) {
  // é, ß, Ж, Arabic alef, hiragana hi, 日, ǅ (titlecase), ʰ (modifier), CJK Extension B.
  for (const char32_t cp :
       {0xE9u, 0xDFu, 0x416u, 0x627u, 0x3072u, 0x65E5u, 0x1C5u, 0x2B0u, 0x20000u}) {
    EXPECT_TRUE(IsLetter(cp)) << std::hex << static_cast<uint32_t>(cp);
  }
}

TEST(UnicodeCategoriesTest, NumbersOfAllThreeCategories) {
  // ² ½ (No), Ⅻ (Nl), Arabic-Indic three, fullwidth 5 (Nd), mathematical double-struck zero.
  for (const char32_t cp : {0xB2u, 0xBDu, 0x216Bu, 0x663u, 0xFF15u, 0x1D7D8u}) {
    EXPECT_TRUE(IsNumber(cp)) << std::hex << static_cast<uint32_t>(cp);
  }
}

TEST(UnicodeCategoriesTest, WhitespaceIsTheWhiteSpaceProperty) {
  for (const char32_t cp :
       {0x85u, 0xA0u, 0x1680u, 0x2000u, 0x200Au, 0x2028u, 0x2029u, 0x202Fu, 0x205Fu, 0x3000u}) {
    EXPECT_TRUE(IsWhitespace(cp)) << std::hex << static_cast<uint32_t>(cp);
  }
  // Zero-width space, Mongolian vowel separator, BOM, file separator: not White_Space.
  for (const char32_t cp : {0x200Bu, 0x180Eu, 0xFEFFu, 0x1Cu}) {
    EXPECT_EQ(ClassifyCodepoint(cp), Class::kOther) << std::hex << static_cast<uint32_t>(cp);
  }
}

TEST(UnicodeCategoriesTest, Others) {
  // Emoji, combining acute, ZWJ, private use, last codepoint, beyond Unicode.
  for (const char32_t cp :
       {0x1F600u, 0x301u, 0x200Du, 0xE000u, 0x10FFFFu, 0x110000u, 0xFFFFFFFFu}) {
    EXPECT_EQ(ClassifyCodepoint(cp), Class::kOther) << std::hex << static_cast<uint32_t>(cp);
  }
}

TEST(UnicodeCategoriesTest, TableIsSortedRunsFromZero) {
  const std::span<const uint32_t> runs = UnicodeCategoryRuns();
  ASSERT_FALSE(runs.empty());
  EXPECT_EQ(runs[0] >> 8, 0u);
  for (size_t i = 1; i < runs.size(); ++i) {
    EXPECT_LT(runs[i - 1] >> 8, runs[i] >> 8);
    EXPECT_NE(runs[i - 1] & 0xFF, runs[i] & 0xFF);
    EXPECT_LE(runs[i] & 0xFF, 3u);
  }
  EXPECT_LE(runs.back() >> 8, 0x10FFFFu);
}

}  // namespace
}  // namespace kvserve
