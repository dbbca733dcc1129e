#include "engine/model/tokenizer.h"

#include "engine/model/utf8.h"

namespace kvserve {

std::string Tokenizer::TokenBytes(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return token_bytes_[id];
}

bool Tokenizer::IsSpecial(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return false;
  return types_[id] == TokenType::kControl || types_[id] == TokenType::kUnknown;
}

std::string Tokenizer::Decode(std::span<const int32_t> ids) const {
  std::string bytes;
  for (const int32_t id : ids) bytes += TokenBytes(id);
  return SanitizeUtf8(bytes);
}

}  // namespace kvserve
