#include "engine/model/chat_template.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"

namespace kvserve {
namespace {

// SmolLM2-135M-Instruct.Q4_1.gguf `tokenizer.chat_template`, verbatim.
constexpr char kSmolLm2Template[] =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|im_start|>assistant\n' }}{% endif %}";

// Expected prompts below are jinja2 3.1 renderings of the template.
TEST(ChatTemplateTest, SmolLm2InsertsItsDefaultSystemPrompt) {
  const ChatTemplate chat_template(kSmolLm2Template);
  EXPECT_EQ(chat_template.style(), ChatTemplate::Style::kChatMl);
  EXPECT_EQ(chat_template.default_system_prompt(),
            "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  const std::vector<ChatMessage> messages = {{"user", "What is the capital of France?"}};
  EXPECT_EQ(*chat_template.Apply(messages, /*add_generation_prompt=*/true),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
            "Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, SmolLm2KeepsTheCallersSystemMessage) {
  const ChatTemplate chat_template(kSmolLm2Template);
  const std::vector<ChatMessage> messages = {
      {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Bye"}};
  EXPECT_EQ(*chat_template.Apply(messages, /*add_generation_prompt=*/false),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n");
}

TEST(ChatTemplateTest, SmolLm2WithNoMessages) {
  const ChatTemplate chat_template(kSmolLm2Template);
  EXPECT_EQ(*chat_template.Apply({}, /*add_generation_prompt=*/true), "<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, DefaultSystemPromptWithJinjaEscapes) {
  // The same literal written with escapes, as tokenizer_config.json files often hold it.
  const ChatTemplate chat_template(
      R"({% if messages[0]['role'] != 'system' %}{{- "<|im_start|>system\nYou\'re \"Bob\".<|im_end|>\n" }}{% endif %})"
      R"({% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %})");
  EXPECT_EQ(chat_template.default_system_prompt(), "You're \"Bob\".");
}

TEST(ChatTemplateTest, PlainChatMlHasNoDefaultSystemPrompt) {
  const ChatTemplate chat_template(
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
      "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}");
  EXPECT_EQ(chat_template.default_system_prompt(), "");
  const std::vector<ChatMessage> messages = {{"user", "Hi"}, {"tool", "42"}};
  EXPECT_EQ(*chat_template.Apply(messages, /*add_generation_prompt=*/false),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>tool\n42<|im_end|>\n");
}

TEST(ChatTemplateTest, Llama3) {
  const ChatTemplate chat_template(
      "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
      "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | "
      "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% "
      "endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
      "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}");
  EXPECT_EQ(chat_template.style(), ChatTemplate::Style::kLlama3);
  const std::vector<ChatMessage> messages = {{"system", " Be brief. "}, {"user", "Hi\n"}};
  // jinja2 with bos_token='' (callers add BOS themselves).
  EXPECT_EQ(*chat_template.Apply(messages, /*add_generation_prompt=*/true),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplateTest, UnknownRoleIsInvalid) {
  const ChatTemplate chat_template(kSmolLm2Template);
  const std::vector<ChatMessage> messages = {{"user", "Hi"}, {"wizard", "Abracadabra"}};
  const absl::StatusOr<std::string> prompt = chat_template.Apply(messages, true);
  EXPECT_EQ(prompt.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(prompt.status().ToString().find("'wizard'"), std::string::npos) << prompt.status();
}

TEST(ChatTemplateTest, NoTemplate) {
  const ChatTemplate chat_template("");
  EXPECT_EQ(chat_template.style(), ChatTemplate::Style::kNone);
  const absl::StatusOr<std::string> prompt = chat_template.Apply({}, true);
  EXPECT_EQ(prompt.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(prompt.status().message(), "model has no chat template");
}

TEST(ChatTemplateTest, UnsupportedTemplates) {
  for (const std::string source :
       {"{% for message in messages %}{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' "
        "}}{% endfor %}",
        "{{- bos_token }}{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}{{- 'Cutting "
        "Knowledge Date: December 2023\\n' }}"}) {
    const ChatTemplate chat_template(source);
    EXPECT_EQ(chat_template.style(), ChatTemplate::Style::kUnsupported);
    const absl::StatusOr<std::string> prompt =
        chat_template.Apply(std::vector<ChatMessage>{{"user", "Hi"}}, true);
    EXPECT_EQ(prompt.status().code(), absl::StatusCode::kUnimplemented);
    EXPECT_TRUE(absl::StartsWith(prompt.status().message(), "chat template not supported: "));
  }
}

}  // namespace
}  // namespace kvserve
