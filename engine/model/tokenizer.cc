#include "engine/model/tokenizer.h"

#include "engine/model/utf8.h"

namespace kvserve {

std::string Tokenizer::Decode(std::span<const int32_t> ids) const {
  std::string bytes;
  for (const int32_t id : ids) bytes += TokenBytes(id);
  return SanitizeUtf8(bytes);
}

}  // namespace kvserve
