#include "engine/model/stream_detokenizer.h"

#include "engine/model/utf8.h"

namespace kvserve {

StreamDetokenizer::StreamDetokenizer(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(tokenizer), skip_special_(skip_special) {}

std::string StreamDetokenizer::Push(int32_t id) {
  if (skip_special_ && tokenizer_.IsSpecial(id)) return {};
  pending_ += tokenizer_.TokenBytes(id);
  std::string text;
  pending_.erase(0, AppendSanitizedUtf8(pending_, /*at_end=*/false, &text));
  return text;
}

std::string StreamDetokenizer::Flush() {
  std::string text;
  AppendSanitizedUtf8(pending_, /*at_end=*/true, &text);
  pending_.clear();
  return text;
}

}  // namespace kvserve
