#include "server/request_limits.h"

#include <algorithm>
#include <cctype>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace kvserve::server {
namespace {

template <typename... Parts>
absl::Status Invalid(const Parts&... parts) {
  return absl::InvalidArgumentError(absl::StrCat(parts...));
}

absl::Status CheckCount(int64_t count, int64_t cap, const char* field, const char* flag) {
  if (count <= cap) return absl::OkStatus();
  return Invalid(field, " has ", count, " entries; this server accepts at most ", cap, " (", flag,
                 ")");
}

bool IsControl(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

}  // namespace

void AddRequestLimitFlags(CLI::App& app, RequestLimits& l) {
  auto add = [&app](const std::string& flag, auto& value, const std::string& env,
                    const std::string& help) {
    return app.add_option(flag, value, help)->envname(env)->capture_default_str();
  };
  add("--max-stop-strings", l.max_stop_strings, "KVSERVE_MAX_STOP_STRINGS",
      "stop strings per request")
      ->check(CLI::NonNegativeNumber);
  add("--max-stop-string-bytes", l.max_stop_string_bytes, "KVSERVE_MAX_STOP_STRING_BYTES",
      "bytes per stop string")
      ->check(CLI::PositiveNumber);
  add("--max-stop-token-ids", l.max_stop_token_ids, "KVSERVE_MAX_STOP_TOKEN_IDS",
      "stop token ids per request")
      ->check(CLI::NonNegativeNumber);
  add("--max-request-id-bytes", l.max_request_id_bytes, "KVSERVE_MAX_REQUEST_ID_BYTES",
      "bytes of a client-chosen request id")
      ->check(CLI::Range(1, 4096));
  add("--max-logprobs", l.max_logprobs, "KVSERVE_MAX_LOGPROBS", "top logprobs per token")
      ->check(CLI::Range(0, 1024));
  add("--max-chat-messages", l.max_chat_messages, "KVSERVE_MAX_CHAT_MESSAGES",
      "messages per chat prompt")
      ->check(CLI::PositiveNumber);
  add("--max-request-bytes", l.max_request_bytes, "KVSERVE_MAX_REQUEST_BYTES",
      "gRPC receive limit in bytes (0: the model's context x 64 bytes + 1 MiB)")
      ->transform(CLI::AsSizeValue(/*kb_is_1000=*/true))
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
}

int64_t MaxPromptBytes(int context_length, int max_token_bytes) {
  return int64_t{std::max(context_length, 0)} * std::max(max_token_bytes, 1);
}

int MaxTokenBytes(const Tokenizer& tokenizer) {
  size_t longest = 1;
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    longest = std::max(longest, tokenizer.TokenBytes(id).size());
  }
  return static_cast<int>(std::min<size_t>(longest, 1 << 20));
}

int64_t ReceiveLimitBytes(int context_length) {
  return int64_t{std::max(context_length, 0)} * kReceiveBytesPerToken + kReceiveMarginBytes;
}

absl::Status CheckRequestLimits(const v1::GenerateRequest& r, const RequestLimits& limits,
                                int context_length, int max_token_bytes) {
  const std::string& id = r.request_id();
  if (id.size() > static_cast<size_t>(limits.max_request_id_bytes)) {
    return Invalid("request_id is ", id.size(), " bytes; this server accepts at most ",
                   limits.max_request_id_bytes, " (--max-request-id-bytes)");
  }
  if (std::any_of(id.begin(), id.end(), IsControl)) {
    return Invalid("request_id must not contain control characters");
  }

  const int64_t max_prompt_bytes = MaxPromptBytes(context_length, max_token_bytes);
  switch (r.prompt_case()) {
    case v1::GenerateRequest::kText:
      if (static_cast<int64_t>(r.text().size()) > max_prompt_bytes) {
        return Invalid("text is ", r.text().size(), " bytes, more than the model's context of ",
                       context_length, " tokens can hold (", max_prompt_bytes, " bytes)");
      }
      break;
    case v1::GenerateRequest::kTokenIds:
      if (r.token_ids().ids_size() > context_length) {
        return Invalid("token_ids.ids has ", r.token_ids().ids_size(),
                       " tokens, more than the model's context length ", context_length);
      }
      break;
    case v1::GenerateRequest::kChat: {
      const auto& messages = r.chat().messages();
      if (auto s = CheckCount(messages.size(), limits.max_chat_messages, "chat.messages",
                              "--max-chat-messages");
          !s.ok()) {
        return s;
      }
      int64_t bytes = 0;
      for (const v1::ChatMessage& m : messages) bytes += static_cast<int64_t>(m.content().size());
      if (bytes > max_prompt_bytes) {
        return Invalid("chat.messages hold ", bytes,
                       " bytes of content, more than the model's "
                       "context of ",
                       context_length, " tokens can hold (", max_prompt_bytes, " bytes)");
      }
      break;
    }
    case v1::GenerateRequest::PROMPT_NOT_SET:
      break;
  }

  const v1::SamplingOptions& s = r.sampling();
  if (auto st =
          CheckCount(s.stop_size(), limits.max_stop_strings, "sampling.stop", "--max-stop-strings");
      !st.ok()) {
    return st;
  }
  for (int i = 0; i < s.stop_size(); ++i) {
    if (s.stop(i).size() > static_cast<size_t>(limits.max_stop_string_bytes)) {
      return Invalid("sampling.stop[", i, "] is ", s.stop(i).size(),
                     " bytes; this server accepts at most ", limits.max_stop_string_bytes,
                     " (--max-stop-string-bytes)");
    }
  }
  if (auto st = CheckCount(s.stop_token_ids_size(), limits.max_stop_token_ids,
                           "sampling.stop_token_ids", "--max-stop-token-ids");
      !st.ok()) {
    return st;
  }
  if (s.logprobs() > static_cast<uint32_t>(limits.max_logprobs)) {
    return Invalid("sampling.logprobs must be <= ", limits.max_logprobs, ", got ", s.logprobs(),
                   "");
  }
  return absl::OkStatus();
}

std::string LoggedId(std::string_view id) {
  std::string out;
  const size_t n = std::min(id.size(), kLoggedIdBytes);
  out.reserve(n + 8);
  for (size_t i = 0; i < n; ++i) {
    if (IsControl(id[i])) {
      out += absl::StrFormat("\\x%02x", static_cast<unsigned char>(id[i]));
    } else {
      out += id[i];
    }
  }
  if (id.size() > n) absl::StrAppend(&out, "...(", id.size(), " bytes)");
  return out;
}

}  // namespace kvserve::server
