#include "engine/model/prompt_encoding.h"

namespace kvserve {

std::vector<int32_t> EncodePromptText(const Tokenizer& tokenizer, std::string_view text) {
  std::vector<int32_t> ids;
  if (tokenizer.add_bos() && tokenizer.bos_id() >= 0) ids.push_back(tokenizer.bos_id());
  const std::vector<int32_t> encoded = tokenizer.Encode(text);
  ids.insert(ids.end(), encoded.begin(), encoded.end());
  return ids;
}

}  // namespace kvserve
