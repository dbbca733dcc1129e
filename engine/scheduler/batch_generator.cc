#include "engine/scheduler/batch_generator.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "absl/strings/str_cat.h"
#include "engine/sampling/sampler.h"

namespace kvserve {
namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// A request in flight: its cache, sampler state and what it has produced.
struct Sequence {
  const GenerationRequest* request;
  SequenceKvCache kv;
  std::unique_ptr<KvPolicy> policy;
  Sampler sampler;
  TokenHistory history;
  std::vector<int32_t> positions;  // scratch for the chunk being run
  int prefilled = 0;
  bool done = false;
  int32_t last_token = 0;
  Clock::time_point first_token_time;
  GenerationResult result;

  Sequence(const GenerationRequest& r, const ModelConfig& c, PagePool& pool)
      : request(&r), kv(pool, c.n_layers), sampler(r.sampling), history(r.prompt) {}
};

}  // namespace

std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kEos:
      return "eos";
    case FinishReason::kStopToken:
      return "stop_token";
    case FinishReason::kMaxTokens:
      return "max_tokens";
  }
  return "unknown";
}

double GenerationResult::decode_tokens_per_s() const {
  // The first token comes from prefill; decode rate counts the ones after it.
  return tokens.size() > 1 && decode_ms > 0 ? (tokens.size() - 1) * 1000.0 / decode_ms : 0.0;
}

BatchGenerator::BatchGenerator(Backend& backend, GeneratorOptions options)
    : backend_(backend), options_(options) {}

absl::Status BatchGenerator::Validate(const GenerationRequest& r, size_t index) const {
  const ModelConfig& c = backend_.config();
  auto bad = [index](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("request ", index, ": ", what));
  };
  if (r.prompt.empty()) return bad("prompt is empty");
  for (int32_t t : r.prompt) {
    if (t < 0 || t >= c.vocab_size) {
      return bad(absl::StrCat("prompt token id ", t, " is outside the vocabulary [0, ",
                              c.vocab_size, ")"));
    }
  }
  if (r.max_new_tokens < 1)
    return bad(absl::StrCat("max_tokens must be >= 1, got ", r.max_new_tokens));
  const int64_t total = static_cast<int64_t>(r.prompt.size()) + r.max_new_tokens;
  if (total > c.context_length) {
    return bad(absl::StrCat("prompt (", r.prompt.size(), " tokens) + max_tokens (",
                            r.max_new_tokens, ") exceeds the model's context length ",
                            c.context_length));
  }
  if (auto s = Sampler::Validate(r.sampling, c.vocab_size); !s.ok()) return bad(s.message());
  if (auto s = ValidateKvPolicyOptions(r.kv_policy, c); !s.ok()) return bad(s.message());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<GenerationResult>> BatchGenerator::Generate(
    std::span<const GenerationRequest> requests, const TokenCallback& on_token) {
  for (size_t i = 0; i < requests.size(); ++i) {
    if (auto s = Validate(requests[i], i); !s.ok()) return s;
  }
  const ModelConfig& config = backend_.config();
  const int vocab = config.vocab_size;
  const Clock::time_point start = Clock::now();

  // The batch is fixed, so the pool holds exactly what its sequences can reach.
  PagePool pool({config.n_kv_heads, options_.page_size, config.head_dim}, PagePool::kUnbounded);
  std::vector<std::unique_ptr<Sequence>> seqs;
  for (const GenerationRequest& r : requests) {
    seqs.push_back(std::make_unique<Sequence>(r, config, pool));
    auto policy = CreateKvPolicy(r.kv_policy, config);
    if (!policy.ok()) return policy.status();
    seqs.back()->policy = *std::move(policy);
    if (!seqs.back()->kv.Grow(static_cast<int>(r.prompt.size()) + r.max_new_tokens)) {
      return absl::ResourceExhaustedError("out of KV pages");
    }
  }

  // Samples the next token of `s` from its logits row and applies the stop rules.
  auto emit = [&](size_t index, Sequence& s, std::span<float> logits) {
    const int32_t token = s.sampler.Sample(logits, s.history);
    s.history.AddOutput(token);
    s.result.tokens.push_back(token);
    s.last_token = token;
    if (s.result.tokens.size() == 1) {
      s.first_token_time = Clock::now();
      s.result.ttft_ms = MsSince(start);
    }
    if (on_token) on_token(index, token);
    const GenerationRequest& r = *s.request;
    const int generated = static_cast<int>(s.result.tokens.size());
    if (!r.ignore_eos && token == options_.eos_id) {
      s.result.finish_reason = FinishReason::kEos;
    } else if (std::find(r.stop_token_ids.begin(), r.stop_token_ids.end(), token) !=
               r.stop_token_ids.end()) {
      s.result.finish_reason = FinishReason::kStopToken;
    } else if (generated >= r.max_new_tokens) {
      s.result.finish_reason = FinishReason::kMaxTokens;
    } else {
      return;
    }
    s.done = true;
    s.result.decode_ms =
        std::chrono::duration<double, std::milli>(Clock::now() - s.first_token_time).count();
  };

  std::vector<SequenceChunk> batch;
  std::vector<size_t> owners;  // batch row -> sequence index
  std::vector<float> logits;

  // Prefill: ragged batches of prompt chunks, within the chunk budget.
  for (;;) {
    batch.clear();
    owners.clear();
    int budget = options_.prefill_chunk_tokens;
    for (size_t i = 0; i < seqs.size() && budget > 0; ++i) {
      Sequence& s = *seqs[i];
      const int prompt_len = static_cast<int>(s.request->prompt.size());
      if (s.prefilled == prompt_len) continue;
      // A policy that compresses at the end of prefill sees the whole prompt in one chunk.
      const bool whole = s.policy->needs_whole_prompt();
      if (whole && s.prefilled == 0 && budget < prompt_len && !batch.empty()) continue;
      const int n = whole ? prompt_len : std::min(budget, prompt_len - s.prefilled);
      s.positions.resize(n);
      for (int j = 0; j < n; ++j) s.positions[j] = s.prefilled + j;
      batch.push_back({.tokens = std::span(s.request->prompt).subspan(s.prefilled, n),
                       .positions = s.positions,
                       .kv = &s.kv,
                       .compute_logits = s.prefilled + n == prompt_len,
                       .policy = s.policy.get(),
                       .whole_prompt = n == prompt_len});
      owners.push_back(i);
      s.prefilled += n;
      budget -= n;
    }
    if (batch.empty()) break;
    const Clock::time_point t0 = Clock::now();
    if (auto st = backend_.Forward(batch, &logits); !st.ok()) return st;
    const double ms = MsSince(t0);
    size_t row = 0;
    for (size_t b = 0; b < batch.size(); ++b) {
      Sequence& s = *seqs[owners[b]];
      s.result.prefill_ms += ms;
      if (!batch[b].compute_logits) continue;
      emit(owners[b], s, std::span(logits).subspan(row++ * vocab, vocab));
    }
  }

  // Decode: one token per running sequence per step.
  for (;;) {
    batch.clear();
    owners.clear();
    for (size_t i = 0; i < seqs.size(); ++i) {
      Sequence& s = *seqs[i];
      if (s.done) continue;
      // Logical position (prompt + tokens so far), not a cache length: policies may shorten caches.
      s.positions.assign(
          1, static_cast<int32_t>(s.request->prompt.size() + s.result.tokens.size() - 1));
      batch.push_back({.tokens = std::span(&s.last_token, 1),
                       .positions = s.positions,
                       .kv = &s.kv,
                       .compute_logits = true,
                       .policy = s.policy.get()});
      owners.push_back(i);
    }
    if (batch.empty()) break;
    if (auto st = backend_.Forward(batch, &logits); !st.ok()) return st;
    for (size_t b = 0; b < batch.size(); ++b) {
      emit(owners[b], *seqs[owners[b]], std::span(logits).subspan(b * vocab, vocab));
    }
  }

  std::vector<GenerationResult> results;
  for (auto& s : seqs) {
    s->result.kv = s->policy->Stats(s->kv);
    results.push_back(std::move(s->result));
  }
  return results;
}

}  // namespace kvserve
