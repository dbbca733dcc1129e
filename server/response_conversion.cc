#include "server/response_conversion.h"

#include <utility>

namespace kvserve::server {

v1::FinishReason ToProto(FinishReason reason) {
  switch (reason) {
    case FinishReason::kEos:
      return v1::FINISH_REASON_EOS;
    case FinishReason::kMaxTokens:
      return v1::FINISH_REASON_MAX_TOKENS;
    case FinishReason::kStop:
      return v1::FINISH_REASON_STOP_SEQUENCE;
    case FinishReason::kCancelled:
      return v1::FINISH_REASON_CANCELLED;
    case FinishReason::kDeadline:
      return v1::FINISH_REASON_DEADLINE;
    case FinishReason::kError:
      return v1::FINISH_REASON_ERROR;
  }
  return v1::FINISH_REASON_ERROR;
}

void ToProto(const KvStats& stats, int preemptions, v1::KvStats* out) {
  out->set_policy(stats.policy);
  out->mutable_kept_tokens()->Add(stats.kept_tokens.begin(), stats.kept_tokens.end());
  out->set_tsp_tokens(static_cast<uint32_t>(stats.tsp_tokens));
  out->set_prefill_flops_fraction(stats.prefill_flops_fraction);
  out->set_host_tokens(static_cast<uint64_t>(stats.host_tokens));
  out->set_recalled_pages(static_cast<uint64_t>(stats.recalled_pages));
  out->set_recalled_bytes(static_cast<uint64_t>(stats.recalled_bytes));
  out->set_corrections(static_cast<uint64_t>(stats.corrections));
  out->set_correction_rate(stats.correction_rate);
  out->set_step_correction_rate(stats.step_correction_rate);
  out->set_decode_steps(static_cast<uint64_t>(stats.decode_steps));
  out->set_resident_fraction(stats.resident_fraction);
  out->set_preemptions(static_cast<uint32_t>(preemptions));
}

v1::GenerateResponse ToGenerateResponse(SequenceOutput&& o, const Tokenizer* tokenizer) {
  v1::GenerateResponse r;
  r.set_request_id(std::move(o.request_id));
  r.mutable_token_ids()->Add(o.tokens.begin(), o.tokens.end());
  r.set_text(std::move(o.text));
  for (const TokenLogprobs& lp : o.logprobs) {
    v1::TokenLogprob* token = r.add_logprobs();
    token->set_token_id(lp.token);
    token->set_logprob(lp.logprob);
    for (const auto& [id, logprob] : lp.top) {
      v1::TopLogprob* top = token->add_top();
      top->set_token_id(id);
      top->set_logprob(logprob);
      // Decode, not TokenBytes: a lone byte-fallback token is not valid UTF-8, which proto3
      // strings must be.
      if (tokenizer != nullptr) top->set_text(tokenizer->Decode(std::span(&id, 1)));
    }
  }
  r.set_prompt_tokens(static_cast<uint32_t>(o.prompt_tokens));
  r.set_completion_tokens(static_cast<uint32_t>(o.completion_tokens));
  if (!o.finished) return r;

  r.set_finish_reason(ToProto(o.finish_reason));
  r.set_matched_stop(std::move(o.matched_stop));
  r.set_error(std::move(o.error));
  r.mutable_usage()->set_prompt_tokens(static_cast<uint32_t>(o.prompt_tokens));
  r.mutable_usage()->set_completion_tokens(static_cast<uint32_t>(o.completion_tokens));
  v1::Timing* t = r.mutable_timing();
  t->set_queue_ms(o.timing.queue_ms);
  t->set_prefill_ms(o.timing.prefill_ms);
  t->set_ttft_ms(o.timing.ttft_ms);
  t->set_decode_ms(o.timing.decode_ms);
  t->set_decode_tokens_per_s(o.timing.decode_tokens_per_s());
  t->set_e2e_ms(o.timing.e2e_ms);
  ToProto(o.kv, o.preemptions, r.mutable_kv());
  return r;
}

void MergeResponse(v1::GenerateResponse&& later, v1::GenerateResponse* earlier) {
  earlier->mutable_token_ids()->Add(later.token_ids().begin(), later.token_ids().end());
  earlier->mutable_text()->append(later.text());
  for (v1::TokenLogprob& lp : *later.mutable_logprobs()) {
    *earlier->add_logprobs() = std::move(lp);
  }
  earlier->set_prompt_tokens(later.prompt_tokens());
  earlier->set_completion_tokens(later.completion_tokens());
  if (!IsFinal(later)) return;
  earlier->set_finish_reason(later.finish_reason());
  earlier->set_matched_stop(std::move(*later.mutable_matched_stop()));
  earlier->set_error(std::move(*later.mutable_error()));
  *earlier->mutable_usage() = std::move(*later.mutable_usage());
  *earlier->mutable_timing() = std::move(*later.mutable_timing());
  *earlier->mutable_kv() = std::move(*later.mutable_kv());
}

}  // namespace kvserve::server
