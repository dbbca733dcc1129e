#include "engine/model/utf8.h"

namespace kvserve {
namespace {

bool IsContinuation(uint8_t b) { return (b & 0xC0) == 0x80; }

}  // namespace

Utf8Unit DecodeUtf8(std::string_view text, size_t pos) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[pos + i]); };
  const uint8_t lead = byte(0);
  if (lead < 0x80) return {Utf8Unit::Kind::kValid, 1, lead};

  // Table 3-7 of the Unicode standard: the length of each lead byte and the range its second byte
  // must lie in (which rules out overlong forms, surrogates and codepoints above U+10FFFF).
  int length;
  uint8_t second_lo = 0x80, second_hi = 0xBF;
  char32_t cp;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
    cp = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    cp = lead & 0x0F;
    if (lead == 0xE0) second_lo = 0xA0;
    if (lead == 0xED) second_hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    cp = lead & 0x07;
    if (lead == 0xF0) second_lo = 0x90;
    if (lead == 0xF4) second_hi = 0x8F;
  } else {
    return {Utf8Unit::Kind::kInvalid, 1, kReplacementCharacter};
  }

  const size_t available = text.size() - pos;
  for (int i = 1; i < length; ++i) {
    if (static_cast<size_t>(i) >= available) {
      return {Utf8Unit::Kind::kTruncated, static_cast<uint8_t>(i), kReplacementCharacter};
    }
    const uint8_t b = byte(i);
    const bool ok = i == 1 ? (b >= second_lo && b <= second_hi) : IsContinuation(b);
    if (!ok) return {Utf8Unit::Kind::kInvalid, static_cast<uint8_t>(i), kReplacementCharacter};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {Utf8Unit::Kind::kValid, static_cast<uint8_t>(length), cp};
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = kReplacementCharacter;
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

size_t AppendSanitizedUtf8(std::string_view bytes, bool at_end, std::string* out) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    const Utf8Unit unit = DecodeUtf8(bytes, pos);
    if (unit.kind == Utf8Unit::Kind::kTruncated && !at_end) break;
    if (unit.kind == Utf8Unit::Kind::kValid) {
      out->append(bytes.substr(pos, unit.length));
    } else {
      AppendUtf8(kReplacementCharacter, out);
    }
    pos += unit.length;
  }
  return pos;
}

std::string SanitizeUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  AppendSanitizedUtf8(bytes, /*at_end=*/true, &out);
  return out;
}

bool IsValidUtf8(std::string_view bytes) {
  for (size_t pos = 0; pos < bytes.size();) {
    const Utf8Unit unit = DecodeUtf8(bytes, pos);
    if (unit.kind != Utf8Unit::Kind::kValid) return false;
    pos += unit.length;
  }
  return true;
}

}  // namespace kvserve
