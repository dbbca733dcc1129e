#include "engine/model/chat_template.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace kvserve {
namespace {

constexpr char kImStart[] = "<|im_start|>";
constexpr char kImEnd[] = "<|im_end|>";
constexpr char kHeaderStart[] = "<|start_header_id|>";
constexpr char kHeaderEnd[] = "<|end_header_id|>";
constexpr char kEotId[] = "<|eot_id|>";

// The values of the string literals inside the template's {{ }} and {% %} tags, with Jinja's
// (Python's) escapes resolved.
std::vector<std::string> StringLiterals(std::string_view source) {
  std::vector<std::string> literals;
  bool in_tag = false;
  for (size_t i = 0; i < source.size(); ++i) {
    const std::string_view rest = source.substr(i);
    if (!in_tag) {
      if (rest.starts_with("{{") || rest.starts_with("{%")) {
        in_tag = true;
        ++i;
      }
      continue;
    }
    if (rest.starts_with("}}") || rest.starts_with("%}")) {
      in_tag = false;
      ++i;
      continue;
    }
    const char quote = source[i];
    if (quote != '\'' && quote != '"') continue;
    std::string value;
    for (++i; i < source.size() && source[i] != quote; ++i) {
      if (source[i] != '\\' || i + 1 == source.size()) {
        value.push_back(source[i]);
        continue;
      }
      switch (const char escaped = source[++i]) {
        case 'n':
          value.push_back('\n');
          break;
        case 't':
          value.push_back('\t');
          break;
        case 'r':
          value.push_back('\r');
          break;
        case '\\':
        case '\'':
        case '"':
          value.push_back(escaped);
          break;
        default:
          value.push_back('\\');
          value.push_back(escaped);
      }
    }
    literals.push_back(std::move(value));
  }
  return literals;
}

// A ChatML template's default system message is a literal holding a whole system turn, e.g.
// SmolLM2's '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, ...<|im_end|>\n'.
std::string FindDefaultSystemPrompt(std::string_view source) {
  const std::string head = absl::StrCat(kImStart, "system\n");
  const std::string tail = absl::StrCat(kImEnd, "\n");
  for (const std::string& literal : StringLiterals(source)) {
    if (literal.size() > head.size() + tail.size() && literal.starts_with(head) &&
        literal.ends_with(tail)) {
      return literal.substr(head.size(), literal.size() - head.size() - tail.size());
    }
  }
  return "";
}

// Debian's Abseil has its own string_view.
absl::string_view AsAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

bool IsKnownRole(std::string_view role) {
  return role == "system" || role == "user" || role == "assistant" || role == "tool";
}

}  // namespace

ChatTemplate::ChatTemplate(std::string_view source) : source_head_(source.substr(0, 80)) {
  if (absl::StripAsciiWhitespace(AsAbsl(source)).empty()) {
    style_ = Style::kNone;
  } else if (source.find(kImStart) != std::string_view::npos) {
    style_ = Style::kChatMl;
    default_system_prompt_ = FindDefaultSystemPrompt(source);
  } else if (source.find(kHeaderStart) != std::string_view::npos &&
             source.find("Cutting Knowledge Date") == std::string_view::npos) {
    style_ = Style::kLlama3;
  } else {
    style_ = Style::kUnsupported;
  }
}

absl::StatusOr<std::string> ChatTemplate::Apply(std::span<const ChatMessage> messages,
                                                bool add_generation_prompt) const {
  for (size_t i = 0; i < messages.size(); ++i) {
    if (!IsKnownRole(messages[i].role)) {
      return absl::InvalidArgumentError(
          absl::StrCat("message ", i, " has role '", messages[i].role,
                       "'; expected system, user, assistant or tool"));
    }
  }
  std::string prompt;
  switch (style_) {
    case Style::kNone:
      return absl::FailedPreconditionError("model has no chat template");
    case Style::kUnsupported:
      return absl::UnimplementedError(
          absl::StrCat("chat template not supported: \"", source_head_, "...\""));
    case Style::kChatMl: {
      const auto turn = [&](const std::string& role, const std::string& content) {
        absl::StrAppend(&prompt, kImStart, role, "\n", content, kImEnd, "\n");
      };
      if (!default_system_prompt_.empty() && !messages.empty() && messages[0].role != "system") {
        turn("system", default_system_prompt_);
      }
      for (const ChatMessage& message : messages) turn(message.role, message.content);
      if (add_generation_prompt) absl::StrAppend(&prompt, kImStart, "assistant\n");
      return prompt;
    }
    case Style::kLlama3: {
      // Llama 3's template trims each message's content.
      for (const ChatMessage& message : messages) {
        absl::StrAppend(&prompt, kHeaderStart, message.role, kHeaderEnd, "\n\n",
                        absl::StripAsciiWhitespace(message.content), kEotId);
      }
      if (add_generation_prompt)
        absl::StrAppend(&prompt, kHeaderStart, "assistant", kHeaderEnd, "\n\n");
      return prompt;
    }
  }
  return absl::InternalError("unknown chat template style");
}

}  // namespace kvserve
