#pragma once

#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace kvserve {

struct ChatMessage {
  std::string role;  // system, user, assistant or tool
  std::string content;
};

// Renders a conversation into prompt text the way a model's chat template (GGUF
// `tokenizer.chat_template`, Jinja) would, for the template families recognized from their
// markers rather than by running Jinja.
class ChatTemplate {
 public:
  enum class Style {
    kNone,         // the model has no template
    kChatMl,       // <|im_start|>role\ncontent<|im_end|>\n (SmolLM, Qwen)
    kLlama3,       // <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|> (Llama 3.0)
    kUnsupported,  // anything else, including Llama 3.1's dated system preamble
  };

  explicit ChatTemplate(std::string_view source);

  Style style() const { return style_; }
  // ChatML: the system prompt the template inserts when the first message is not a system one,
  // taken from the template's own text; empty when it inserts none.
  const std::string& default_system_prompt() const { return default_system_prompt_; }

  // The prompt for `messages`, followed by the assistant's header when `add_generation_prompt`.
  // Holds no BOS: callers add it as Tokenizer::add_bos() says. Fails with InvalidArgument for a
  // role other than system/user/assistant/tool, FailedPrecondition when the model has no template,
  // Unimplemented for an unsupported one.
  absl::StatusOr<std::string> Apply(std::span<const ChatMessage> messages,
                                    bool add_generation_prompt) const;

 private:
  Style style_ = Style::kNone;
  std::string default_system_prompt_;
  std::string source_head_;  // the template's start, to name it in errors
};

}  // namespace kvserve
