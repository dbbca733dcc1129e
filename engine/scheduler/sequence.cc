#include "engine/scheduler/sequence.h"

#include <utility>

namespace kvserve {
namespace {

double Ms(EngineClock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace

Sequence::Sequence(EngineRequest r, OutputCallback callback, const Tokenizer* tokenizer)
    : request(std::move(r)),
      on_output(std::move(callback)),
      prompt_len(static_cast<int>(request.prompt.size())),
      tokens(std::move(request.prompt)),
      sampler(request.sampling),
      history(tokens),
      stops(request.stop),
      submitted(EngineClock::now()) {
  tokens.reserve(static_cast<size_t>(prompt_len) + request.max_new_tokens);
  if (tokenizer != nullptr) detokenizer.emplace(*tokenizer, /*skip_special=*/true);
}

RequestTiming Sequence::Timing(EngineClock::time_point now) const {
  RequestTiming t;
  t.queue_ms = Ms(first_scheduled.value_or(now) - submitted);
  if (prefill_done && first_scheduled) t.prefill_ms = Ms(*prefill_done - *first_scheduled);
  if (first_token) {
    t.ttft_ms = Ms(*first_token - submitted);
    t.decode_ms = Ms(last_token - *first_token);
  }
  t.e2e_ms = Ms(now - submitted);
  t.completion_tokens = generated();
  return t;
}

}  // namespace kvserve
