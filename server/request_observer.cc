#include "server/request_observer.h"

#include <string>

#include "fmt/format.h"
#include "server/request_limits.h"
#include "spdlog/spdlog.h"

namespace kvserve::server {
namespace {

double Seconds(EngineClock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

void RequestObserver::OnOutput(const SequenceOutput& output) {
  const EngineClock::time_point now = EngineClock::now();
  if (!output.tokens.empty()) {
    if (!first_token_seen_) {
      first_token_seen_ = true;
      first_token_ = now;
      metrics_.ObserveFirstToken(Seconds(now - arrival_), output.prompt_tokens);
    } else {
      metrics_.ObserveInterToken(Seconds(now - last_token_));
    }
    last_token_ = now;
    metrics_.CountGeneratedTokens(static_cast<int>(output.tokens.size()));
  }
  if (!output.finished) return;

  const double e2e_s = Seconds(now - arrival_);
  metrics_.ObserveFinished(output, e2e_s);
  // "-" when no token was generated (cancelled or expired before the first).
  const std::string ttft_ms =
      first_token_seen_ ? fmt::format("{:.1f}", Seconds(first_token_ - arrival_) * 1000.0) : "-";
  if (output.finish_reason == FinishReason::kError) {
    spdlog::warn(
        "request finished id={} prompt_tokens={} generated_tokens={} ttft_ms={} e2e_ms={:.1f} "
        "finish_reason={} kv_policy={} error=\"{}\"",
        LoggedId(output.request_id), output.prompt_tokens, output.completion_tokens, ttft_ms,
        e2e_s * 1000.0, FinishReasonName(output.finish_reason), kv_policy_, output.error);
    return;
  }
  spdlog::info(
      "request finished id={} prompt_tokens={} generated_tokens={} ttft_ms={} e2e_ms={:.1f} "
      "finish_reason={} kv_policy={}",
      LoggedId(output.request_id), output.prompt_tokens, output.completion_tokens, ttft_ms,
      e2e_s * 1000.0, FinishReasonName(output.finish_reason), kv_policy_);
}

}  // namespace kvserve::server
