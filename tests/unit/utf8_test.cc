#include "engine/model/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace kvserve {
namespace {

using Kind = Utf8Unit::Kind;

TEST(Utf8Test, DecodesOneToFourByteCharacters) {
  const std::string text = "a\xC3\xA9\xE6\x97\xA5\xF0\x9F\x98\x80";  // a é 日 😀
  const char32_t expected[] = {U'a', U'\u00E9', U'\u65E5', U'\U0001F600'};
  size_t pos = 0;
  for (int i = 0; i < 4; ++i) {
    const Utf8Unit unit = DecodeUtf8(text, pos);
    EXPECT_EQ(unit.kind, Kind::kValid);
    EXPECT_EQ(unit.length, i + 1);
    EXPECT_EQ(unit.codepoint, expected[i]);
    pos += unit.length;
  }
  EXPECT_EQ(pos, text.size());
}

TEST(Utf8Test, RejectsOverlongSurrogateAndOutOfRangeForms) {
  for (const std::string bad :
       {"\xC0\x80", "\xC1\xBF", "\xE0\x80\x80", "\xED\xA0\x80", "\xF0\x80\x80\x80",
        "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xFF", "\x80"}) {
    const Utf8Unit unit = DecodeUtf8(bad, 0);
    EXPECT_EQ(unit.kind, Kind::kInvalid) << bad;
    EXPECT_EQ(unit.length, 1) << bad;
    EXPECT_EQ(unit.codepoint, kReplacementCharacter);
  }
}

TEST(Utf8Test, InvalidUnitIsTheMaximalSubpart) {
  const Utf8Unit unit = DecodeUtf8(
      "\xE2\x82"
      "A",
      0);
  EXPECT_EQ(unit.kind, Kind::kInvalid);
  EXPECT_EQ(unit.length, 2);
  EXPECT_EQ(DecodeUtf8("\xF0\x9F\x98"
                       "A",
                       0)
                .length,
            3);
}

TEST(Utf8Test, CutOffSequenceIsTruncated) {
  for (const std::string prefix : {"\xC3", "\xE6\x97", "\xF0\x9F\x98"}) {
    const Utf8Unit unit = DecodeUtf8(prefix, 0);
    EXPECT_EQ(unit.kind, Kind::kTruncated) << prefix;
    EXPECT_EQ(unit.length, prefix.size());
  }
}

TEST(Utf8Test, SanitizeReplacesEachIllFormedUnitAsPythonDoes) {
  // b"a\xe2\x82b\xff\xf0\x9f".decode("utf-8", "replace")
  EXPECT_EQ(SanitizeUtf8("a\xE2\x82"
                         "b\xFF\xF0\x9F"),
            "a\uFFFDb\uFFFD\uFFFD");
  EXPECT_EQ(SanitizeUtf8("\xED\xA0\x80"), "\uFFFD\uFFFD\uFFFD");
  EXPECT_EQ(SanitizeUtf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(SanitizeUtf8(""), "");
}

TEST(Utf8Test, AppendSanitizedHoldsBackATruncatedTailUnlessAtEnd) {
  const std::string bytes = "ok\xF0\x9F\x98";
  std::string out;
  EXPECT_EQ(AppendSanitizedUtf8(bytes, /*at_end=*/false, &out), 2u);
  EXPECT_EQ(out, "ok");
  out.clear();
  EXPECT_EQ(AppendSanitizedUtf8(bytes, /*at_end=*/true, &out), bytes.size());
  EXPECT_EQ(out, "ok\uFFFD");
  // An ill-formed (not merely cut off) unit is replaced at once.
  out.clear();
  EXPECT_EQ(AppendSanitizedUtf8("\xF0\x9F"
                                "A",
                                /*at_end=*/false, &out),
            3u);
  EXPECT_EQ(out, "\uFFFDA");
}

TEST(Utf8Test, EncodeDecodeRoundTripsAtEveryLengthBoundary) {
  for (const char32_t cp :
       {0x0u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xD7FFu, 0xE000u, 0xFFFFu, 0x10000u, 0x10FFFFu}) {
    std::string text;
    AppendUtf8(cp, &text);
    const Utf8Unit unit = DecodeUtf8(text, 0);
    EXPECT_EQ(unit.kind, Kind::kValid) << static_cast<uint32_t>(cp);
    EXPECT_EQ(unit.codepoint, cp);
    EXPECT_EQ(unit.length, text.size());
  }
}

TEST(Utf8Test, EncodesUnencodableCodepointsAsReplacement) {
  for (const char32_t cp : {0xD800u, 0xDFFFu, 0x110000u}) {
    std::string text;
    AppendUtf8(cp, &text);
    EXPECT_EQ(text, "\uFFFD") << static_cast<uint32_t>(cp);
  }
}

TEST(Utf8Test, IsValidUtf8) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("h\xC3\xA9llo \xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("h\xC3"));
  EXPECT_FALSE(IsValidUtf8("\xC0\x80"));
}

}  // namespace
}  // namespace kvserve
