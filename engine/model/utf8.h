#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kvserve {

inline constexpr char32_t kReplacementCharacter = 0xFFFD;

// One unit of a byte string: a well-formed UTF-8 character, or an ill-formed stretch that stands
// for one U+FFFD.
struct Utf8Unit {
  enum class Kind : uint8_t {
    kValid,
    // Not the start of any well-formed character: `length` is the maximal subpart (the longest
    // prefix of a well-formed sequence, at least one byte), as Python and WHATWG decoders count it.
    kInvalid,
    // A well-formed prefix cut off by the end of the input: more bytes may complete it.
    kTruncated,
  };
  Kind kind;
  uint8_t length;      // bytes covered, 1..4
  char32_t codepoint;  // kReplacementCharacter unless kValid
};

// Decodes the unit starting at text[pos]; requires pos < text.size(). Never reads past the end.
Utf8Unit DecodeUtf8(std::string_view text, size_t pos);

void AppendUtf8(char32_t codepoint, std::string* out);

// Appends `bytes` to `out` with every ill-formed unit replaced by U+FFFD. A truncated unit at the
// end is replaced too when `at_end`, else left unconsumed so a later call can complete it. Returns
// the number of bytes consumed.
size_t AppendSanitizedUtf8(std::string_view bytes, bool at_end, std::string* out);

// `bytes` with every ill-formed or truncated unit replaced by U+FFFD.
std::string SanitizeUtf8(std::string_view bytes);

bool IsValidUtf8(std::string_view bytes);

}  // namespace kvserve
