#include "engine/scheduler/engine_request.h"

namespace kvserve {

std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kEos:
      return "eos";
    case FinishReason::kMaxTokens:
      return "max_tokens";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kDeadline:
      return "deadline";
    case FinishReason::kError:
      return "error";
  }
  return "unknown";
}

double RequestTiming::decode_tokens_per_s() const {
  return completion_tokens > 1 && decode_ms > 0 ? (completion_tokens - 1) * 1000.0 / decode_ms
                                                : 0.0;
}

}  // namespace kvserve
