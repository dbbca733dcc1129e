#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "engine/model/tokenizer.h"
#include "kvserve/v1/inference.pb.h"

namespace CLI {
class App;
}  // namespace CLI

namespace kvserve::server {

// Caps on the request fields whose size comes from the client; each is a server flag. They are
// checked on the raw request, before anything is tokenized, copied or allocated for it.
struct RequestLimits {
  int max_stop_strings = 16;
  int max_stop_string_bytes = 256;
  int max_stop_token_ids = 64;
  int max_request_id_bytes = 128;
  int max_logprobs = 20;  // vLLM's default cap on top logprobs per token
  int max_chat_messages = 1024;
  // The longest token of `tokenizer`, in bytes.
  int MaxTokenBytes(const Tokenizer& tokenizer);

  // gRPC's receive limit; 0 derives it from the model's context (ReceiveLimitBytes).
  int64_t max_request_bytes = 0;
};

// Registers --max-stop-strings, --max-stop-string-bytes, --max-stop-token-ids,
// --max-request-id-bytes, --max-logprobs, --max-chat-messages and --max-request-bytes.
void AddRequestLimitFlags(CLI::App& app, RequestLimits& limits);

// The most prompt text (bytes) a context of `context_length` tokens can hold when no token spans
// more than `max_token_bytes` bytes: longer text cannot fit, so it is refused before tokenizing.
int64_t MaxPromptBytes(int context_length, int max_token_bytes);

// The longest token of `tokenizer`, in bytes.
int MaxTokenBytes(const Tokenizer& tokenizer);

// gRPC's receive limit for a model of `context_length` tokens: a prompt the context can hold, at
// kReceiveBytesPerToken bytes a token (text or varint ids), plus a margin for the other fields.
inline constexpr int64_t kReceiveBytesPerToken = 64;
inline constexpr int64_t kReceiveMarginBytes = int64_t{1} << 20;
int64_t ReceiveLimitBytes(int context_length);

// Checks the size-like fields of `request` against `limits` and the model (context length,
// longest token); InvalidArgument naming the field. Reads sizes only: cost independent of content
// beyond one pass over the request id.
absl::Status CheckRequestLimits(const v1::GenerateRequest& request, const RequestLimits& limits,
                                int context_length, int max_token_bytes);

// `id` for a log line: at most kLoggedIdBytes bytes, control characters escaped, "..." when cut.
inline constexpr size_t kLoggedIdBytes = 64;
std::string LoggedId(std::string_view id);

}  // namespace kvserve::server
