#include "engine/sampling/sampler.h"

#include <cmath>
#include <cstddef>
#include <limits>

#include "absl/strings/str_cat.h"
#include "engine/base/field_violation.h"
#include "engine/sampling/logprobs.h"
#include "engine/sampling/penalties.h"

namespace kvserve {
namespace {

// Argmax with ties to the lowest id; NaN never wins. 0 when nothing beats -inf.
int32_t Argmax(std::span<const float> logits) {
  int32_t best = 0;
  float best_logit = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] > best_logit) {
      best_logit = logits[i];
      best = static_cast<int32_t>(i);
    }
  }
  return best;
}

absl::Status OutOfRange(const char* field, const char* range, float value) {
  return InvalidField(field, absl::StrCat("must be ", range, ", got ", value));
}

}  // namespace

Sampler::Sampler(const SamplingParams& params) : params_(params) {
  if (params_.seed.has_value()) {
    rng_.seed(*params_.seed);
  } else {
    std::random_device device;
    rng_.seed((static_cast<uint64_t>(device()) << 32) ^ device());
  }
}

absl::Status Sampler::Validate(const SamplingParams& p, int vocab_size) {
  // Each range check is written as !(inside) so that NaN fails it too.
  if (vocab_size <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("vocab_size must be > 0, got ", vocab_size));
  }
  if (!(p.temperature >= 0.0f && std::isfinite(p.temperature))) {
    return OutOfRange("temperature", ">= 0 and finite", p.temperature);
  }
  if (p.top_k < 0) {
    return InvalidField("top_k", absl::StrCat("must be >= 0 (0 = off), got ", p.top_k));
  }
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) return OutOfRange("top_p", "in (0, 1]", p.top_p);
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) return OutOfRange("min_p", "in [0, 1]", p.min_p);
  if (!(p.repetition_penalty > 0.0f && std::isfinite(p.repetition_penalty))) {
    return OutOfRange("repetition_penalty", "> 0 and finite", p.repetition_penalty);
  }
  if (!(p.presence_penalty >= -2.0f && p.presence_penalty <= 2.0f)) {
    return OutOfRange("presence_penalty", "in [-2, 2]", p.presence_penalty);
  }
  if (!(p.frequency_penalty >= -2.0f && p.frequency_penalty <= 2.0f)) {
    return OutOfRange("frequency_penalty", "in [-2, 2]", p.frequency_penalty);
  }
  return absl::OkStatus();
}

int32_t Sampler::Sample(std::span<float> logits, const TokenHistory& history) {
  ApplyPenalties(logits, history, params_);
  if (params_.temperature == 0.0f) return Argmax(logits);
  return SampleRandom(logits);
}

SampleResult Sampler::SampleWithLogprob(std::span<float> logits, const TokenHistory& history) {
  raw_logits_.assign(logits.begin(), logits.end());
  const int32_t token = Sample(logits, history);
  return {token, LogSoftmaxAt(raw_logits_, token)};
}

int32_t Sampler::SampleRandom(std::span<const float> logits) {
  SelectTopK(logits, params_.top_k, candidates_);
  if (!ComputeWeights(candidates_, 1.0f / params_.temperature)) return Argmax(logits);
  KeepTopP(candidates_, params_.top_p);
  KeepMinP(candidates_, params_.min_p);
  if (candidates_.empty()) return Argmax(logits);  // only with unvalidated params (min_p > 1)
  return Draw();
}

int32_t Sampler::Draw() {
  double total = 0.0;
  for (const Candidate& c : candidates_) total += c.weight;
  const double u = NextUniform() * total;
  double cumulative = 0.0;
  for (const Candidate& c : candidates_) {
    cumulative += c.weight;
    if (u < cumulative) return c.id;
  }
  return candidates_.back().id;  // u rounded up to the total
}

double Sampler::NextUniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

}  // namespace kvserve
