// libFuzzer: chat template recognition and rendering. The input is NUL-separated: the template
// source, then role, content, role, content, ... Each content must appear in the rendering.
#include <cstdint>
#include <cstdio>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "engine/model/chat_template.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvserve;
  if (size > 16384) return 0;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts = absl::StrSplit(input, '\0');
  const ChatTemplate chat_template(parts[0]);
  std::vector<ChatMessage> messages;
  for (size_t i = 1; i + 1 < parts.size(); i += 2) {
    messages.push_back({parts[i], parts[i + 1]});
  }
  for (bool generation_prompt : {false, true}) {
    auto text = chat_template.Apply(messages, generation_prompt);
    if (text.ok() && chat_template.style() != ChatTemplate::Style::kNone) {
      // Every message's content appears in the rendering.
      for (const ChatMessage& m : messages) {
        // Llama 3's template trims each content.
        const std::string content = chat_template.style() == ChatTemplate::Style::kLlama3
                                        ? std::string(absl::StripAsciiWhitespace(m.content))
                                        : m.content;
        if (text->find(content) == std::string::npos) {
          std::fprintf(stderr, "style %d: content [%s] not in [%s]\n",
                       static_cast<int>(chat_template.style()), m.content.c_str(), text->c_str());
          KVSERVE_FUZZ_CHECK(false);
        }
      }
    }
  }
  return 0;
}
