#pragma once

#include "engine/model/tokenizer.h"
#include "engine/scheduler/engine_core.h"
#include "kvserve/v1/inference.pb.h"

namespace kvserve::server {

v1::FinishReason ToProto(FinishReason reason);
void ToProto(const KvStats& stats, int preemptions, v1::KvStats* out);

// One stream message for one engine output: its new tokens, text and logprobs, the cumulative
// counts, and on the last output the finish reason, usage, timing and KV stats. `tokenizer` (may
// be null) gives the text of top-logprob candidates.
v1::GenerateResponse ToGenerateResponse(SequenceOutput&& output, const Tokenizer* tokenizer);

// Whether `response` is the request's last message.
inline bool IsFinal(const v1::GenerateResponse& response) {
  return response.finish_reason() != v1::FINISH_REASON_UNSPECIFIED;
}

// Folds `later` into `earlier` as if they had been one message: tokens, text and logprobs
// appended, cumulative counts and (when `later` is final) the final fields taken from `later`.
void MergeResponse(v1::GenerateResponse&& later, v1::GenerateResponse* earlier);

}  // namespace kvserve::server
