// Sampler: parameter validation, vLLM penalties, greedy, the truncations (top-k, top-p, min-p)
// checked statistically against the renormalized reference distribution, seeds, and logprobs.
// Every random test uses a fixed seed, so it is deterministic; the statistical bounds (5 sigma
// per token) are loose enough that a correct sampler passes for essentially any seed.

#include "engine/sampling/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "engine/math/fast_exp.h"
#include "engine/sampling/candidate_filters.h"
#include "engine/sampling/logprobs.h"
#include "engine/sampling/penalties.h"
#include "engine/sampling/token_history.h"

namespace kvserve {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr int kDraws = 20000;

// Reference softmax in double.
std::vector<double> Softmax(const std::vector<float>& logits, double temperature = 1.0) {
  double max = -kInf;
  for (float v : logits) max = std::max(max, static_cast<double>(v));
  std::vector<double> p(logits.size());
  double sum = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    p[i] = std::exp((logits[i] - max) / temperature);
    sum += p[i];
  }
  for (double& v : p) v /= sum;
  return p;
}

// Zeroes the probabilities of dropped tokens and renormalizes the rest.
std::vector<double> Restrict(std::vector<double> p, const std::vector<bool>& keep) {
  double sum = 0.0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (!keep[i]) p[i] = 0.0;
    sum += p[i];
  }
  for (double& v : p) v /= sum;
  return p;
}

// Ids ordered most likely first, ties to the lower id.
std::vector<size_t> RankOrder(const std::vector<double>& p) {
  std::vector<size_t> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
  return order;
}

std::vector<int> Histogram(const SamplingParams& params, const std::vector<float>& logits,
                           int draws) {
  Sampler sampler(params);
  TokenHistory history;
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) {
    std::vector<float> step = logits;
    ++counts[static_cast<size_t>(sampler.Sample(step, history))];
  }
  return counts;
}

// Tokens with probability 0 never appear; the others are within 5 binomial sigmas of n·p.
void ExpectFrequencies(const std::vector<int>& counts, const std::vector<double>& expected,
                       int draws) {
  ASSERT_EQ(counts.size(), expected.size());
  for (size_t i = 0; i < counts.size(); ++i) {
    if (expected[i] == 0.0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " should have been filtered out";
      continue;
    }
    const double mean = draws * expected[i];
    const double sigma = std::sqrt(draws * expected[i] * (1.0 - expected[i]));
    EXPECT_NEAR(counts[i], mean, 5.0 * sigma + 1.0) << "token " << i << ", p = " << expected[i];
  }
}

SamplingParams Random(uint64_t seed = 1234) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = seed;
  return p;
}

// ---------------------------------------------------------------------------------------------
// Validate

TEST(SamplerValidateTest, AcceptsDefaultsAndBoundaries) {
  EXPECT_TRUE(Sampler::Validate(SamplingParams{}, 49152).ok());
  SamplingParams p;
  p.temperature = 2.0f;
  p.top_k = 100000;  // more than the vocabulary: off, as in vLLM
  p.top_p = 1.0f;
  p.min_p = 1.0f;
  p.repetition_penalty = 0.5f;
  p.presence_penalty = -2.0f;
  p.frequency_penalty = 2.0f;
  EXPECT_TRUE(Sampler::Validate(p, 49152).ok());
}

TEST(SamplerValidateTest, RejectsEachFieldWithItsName) {
  struct Case {
    std::function<void(SamplingParams&)> mutate;
    std::string message;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<Case> cases = {
      {[](SamplingParams& p) { p.top_p = 1.5f; }, "top_p must be in (0, 1], got 1.5"},
      {[](SamplingParams& p) { p.top_p = 0.0f; }, "top_p must be in (0, 1], got 0"},
      {[&](SamplingParams& p) { p.top_p = nan; }, "top_p must be in (0, 1]"},
      {[](SamplingParams& p) { p.temperature = -0.5f; }, "temperature must be >= 0"},
      {[](SamplingParams& p) { p.temperature = kInf; }, "temperature must be >= 0 and finite"},
      {[&](SamplingParams& p) { p.temperature = nan; }, "temperature"},
      {[](SamplingParams& p) { p.top_k = -1; }, "top_k must be >= 0 (0 = off), got -1"},
      {[](SamplingParams& p) { p.min_p = 1.25f; }, "min_p must be in [0, 1], got 1.25"},
      {[](SamplingParams& p) { p.min_p = -0.5f; }, "min_p must be in [0, 1], got -0.5"},
      {[](SamplingParams& p) { p.repetition_penalty = 0.0f; }, "repetition_penalty must be > 0"},
      {[](SamplingParams& p) { p.presence_penalty = 2.5f; },
       "presence_penalty must be in [-2, 2], got 2.5"},
      {[](SamplingParams& p) { p.frequency_penalty = -3.0f; },
       "frequency_penalty must be in [-2, 2], got -3"},
  };
  for (const Case& c : cases) {
    SamplingParams p;
    c.mutate(p);
    const absl::Status status = Sampler::Validate(p, 49152);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_NE(status.message().find(c.message), std::string::npos)
        << "got \"" << status.message() << "\", want it to contain \"" << c.message << "\"";
  }
  EXPECT_EQ(Sampler::Validate(SamplingParams{}, 0).code(), absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// TokenHistory and penalties

TEST(TokenHistoryTest, TracksPromptMembershipAndOutputCounts) {
  const std::vector<int32_t> prompt = {5, 7, 5};
  TokenHistory history(prompt);
  history.AddOutput(7);
  history.AddOutput(9);
  history.AddOutput(9);
  EXPECT_TRUE(history.InPrompt(5));
  EXPECT_TRUE(history.InPrompt(7));
  EXPECT_FALSE(history.InPrompt(9));
  EXPECT_EQ(history.OutputCount(5), 0);
  EXPECT_EQ(history.OutputCount(7), 1);
  EXPECT_EQ(history.OutputCount(9), 2);
  EXPECT_EQ(history.num_output_tokens(), 3);
  EXPECT_EQ(history.entries().size(), 3u);  // distinct ids only
}

TEST(PenaltiesTest, RepetitionDividesPositiveAndMultipliesNonPositive) {
  const std::vector<int32_t> prompt = {0, 1, 2};
  TokenHistory history(prompt);
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  std::vector<float> logits = {3.0f, -1.5f, 0.0f, 4.0f};
  ApplyPenalties(logits, history, p);
  EXPECT_FLOAT_EQ(logits[0], 1.5f);   // 3 / 2
  EXPECT_FLOAT_EQ(logits[1], -3.0f);  // -1.5 * 2
  EXPECT_FLOAT_EQ(logits[2], 0.0f);   // 0 * 2
  EXPECT_FLOAT_EQ(logits[3], 4.0f);   // unseen
}

TEST(PenaltiesTest, PresenceAndFrequencyApplyToOutputTokensOnly) {
  const std::vector<int32_t> prompt = {0};
  TokenHistory history(prompt);
  history.AddOutput(1);
  history.AddOutput(1);
  history.AddOutput(1);
  history.AddOutput(2);
  SamplingParams p;
  p.presence_penalty = 0.25f;
  p.frequency_penalty = 0.5f;
  std::vector<float> logits = {1.0f, 1.0f, 1.0f, 1.0f};
  ApplyPenalties(logits, history, p);
  EXPECT_FLOAT_EQ(logits[0], 1.0f);                 // prompt only: untouched
  EXPECT_FLOAT_EQ(logits[1], 1.0f - 1.5f - 0.25f);  // 3 occurrences
  EXPECT_FLOAT_EQ(logits[2], 1.0f - 0.5f - 0.25f);  // 1 occurrence
  EXPECT_FLOAT_EQ(logits[3], 1.0f);                 // unseen
}

TEST(PenaltiesTest, RepetitionComesBeforeFrequencyAndPresence) {
  const std::vector<int32_t> prompt = {0};
  TokenHistory history(prompt);
  history.AddOutput(0);
  history.AddOutput(0);
  history.AddOutput(1);
  SamplingParams p;
  p.repetition_penalty = 1.5f;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = -0.25f;  // negative penalties encourage
  std::vector<float> logits = {3.0f, -2.0f};
  ApplyPenalties(logits, history, p);
  EXPECT_FLOAT_EQ(logits[0], 3.0f / 1.5f - 2 * 0.5f + 0.25f);  // 1.25
  EXPECT_FLOAT_EQ(logits[1], -2.0f * 1.5f - 0.5f + 0.25f);     // -3.25
}

TEST(PenaltiesTest, NeutralParamsAndOutOfRangeIdsLeaveLogitsUntouched) {
  const std::vector<int32_t> prompt = {0, 1, -3, 1000};
  TokenHistory history(prompt);
  history.AddOutput(1);
  std::vector<float> logits = {2.0f, -2.0f};
  ApplyPenalties(logits, history, SamplingParams{});
  EXPECT_EQ(logits, (std::vector<float>{2.0f, -2.0f}));

  SamplingParams p;
  p.repetition_penalty = 2.0f;
  ApplyPenalties(logits, history, p);  // -3 and 1000 are outside the vocabulary: skipped
  EXPECT_EQ(logits, (std::vector<float>{1.0f, -4.0f}));
}

// ---------------------------------------------------------------------------------------------
// Greedy

TEST(SamplerGreedyTest, PicksArgmax) {
  Sampler sampler(SamplingParams{});
  std::vector<float> logits = {0.1f, -3.0f, 7.5f, 7.25f, -kInf};
  EXPECT_EQ(sampler.Sample(logits, TokenHistory()), 2);
}

TEST(SamplerGreedyTest, TiesGoToTheLowestId) {
  Sampler sampler(SamplingParams{});
  std::vector<float> logits = {1.0f, 4.0f, 2.0f, 4.0f, 4.0f};
  EXPECT_EQ(sampler.Sample(logits, TokenHistory()), 1);
  std::vector<float> all_masked = {-kInf, -kInf, -kInf};
  EXPECT_EQ(sampler.Sample(all_masked, TokenHistory()), 0);
}

TEST(SamplerGreedyTest, IgnoresSeedAndTruncation) {
  const std::vector<float> logits = {0.5f, 1.0f, 3.0f, 2.9f, -1.0f};
  for (uint64_t seed : {0ull, 1ull, 42ull, 0xdeadbeefull}) {
    SamplingParams p;
    p.seed = seed;
    p.top_k = 2;
    p.top_p = 0.3f;
    p.min_p = 0.5f;
    Sampler sampler(p);
    for (int i = 0; i < 10; ++i) {
      std::vector<float> step = logits;
      EXPECT_EQ(sampler.Sample(step, TokenHistory()), 2);
    }
  }
}

TEST(SamplerGreedyTest, PenaltiesApplyBeforeArgmax) {
  SamplingParams p;
  p.frequency_penalty = 0.2f;
  Sampler sampler(p);
  TokenHistory history;
  history.AddOutput(2);
  std::vector<float> logits = {0.5f, 1.0f, 1.1f};
  EXPECT_EQ(sampler.Sample(logits, history), 1);  // 1.1 - 0.2 < 1.0
  EXPECT_FLOAT_EQ(logits[2], 1.1f - 0.2f);        // penalized logits are left in place
}

// ---------------------------------------------------------------------------------------------
// Sampling statistics

const std::vector<float> kLogits = {2.0f, 1.5f, 1.0f, 0.5f, 0.0f, -0.5f, -1.0f, -2.0f};

TEST(SamplerStatsTest, TemperatureOneMatchesSoftmax) {
  ExpectFrequencies(Histogram(Random(), kLogits, kDraws), Softmax(kLogits), kDraws);
}

TEST(SamplerStatsTest, TemperatureDividesLogits) {
  SamplingParams cold = Random();
  cold.temperature = 0.5f;
  ExpectFrequencies(Histogram(cold, kLogits, kDraws), Softmax(kLogits, 0.5), kDraws);
  SamplingParams hot = Random();
  hot.temperature = 3.0f;
  ExpectFrequencies(Histogram(hot, kLogits, kDraws), Softmax(kLogits, 3.0), kDraws);
}

TEST(SamplerStatsTest, TopKKeepsOnlyTheKBestRenormalized) {
  SamplingParams p = Random();
  p.top_k = 3;
  const std::vector<bool> keep = {true, true, true, false, false, false, false, false};
  ExpectFrequencies(Histogram(p, kLogits, kDraws), Restrict(Softmax(kLogits), keep), kDraws);
}

TEST(SamplerStatsTest, TopPKeepsTheSmallestPrefixReachingP) {
  SamplingParams p = Random();
  p.top_p = 0.85f;
  // Reference: walk the tokens most likely first while the mass strictly above is < p.
  const std::vector<double> probs = Softmax(kLogits);
  std::vector<bool> keep(probs.size(), false);
  double mass = 0.0;
  for (size_t id : RankOrder(probs)) {
    if (mass >= p.top_p) break;
    ASSERT_GT(std::abs(mass - p.top_p), 1e-3) << "test logits sit on a top-p boundary";
    keep[id] = true;
    mass += probs[id];
  }
  // Masses above ids 3 and 4: 0.795 < 0.85 <= 0.885, so ids 0..3 stay.
  ASSERT_EQ(keep, (std::vector<bool>{true, true, true, true, false, false, false, false}));
  ExpectFrequencies(Histogram(p, kLogits, kDraws), Restrict(probs, keep), kDraws);
}

TEST(SamplerStatsTest, TopPBoundaryMassExactlyPStopsThere) {
  // Four equal logits: each has probability exactly 0.25, so prefix masses are exact.
  const std::vector<float> flat = {0.0f, 0.0f, 0.0f, 0.0f};
  SamplingParams p = Random();
  p.top_p = 0.5f;  // two tokens reach exactly 0.5: the third is not needed
  ExpectFrequencies(Histogram(p, flat, kDraws), {0.5, 0.5, 0.0, 0.0}, kDraws);
  p.top_p = std::nextafter(0.5f, 1.0f);  // just above: a third token is needed
  ExpectFrequencies(Histogram(p, flat, kDraws), {1 / 3.0, 1 / 3.0, 1 / 3.0, 0.0}, kDraws);
  p.top_p = 0.75f;
  ExpectFrequencies(Histogram(p, flat, kDraws), {1 / 3.0, 1 / 3.0, 1 / 3.0, 0.0}, kDraws);
}

TEST(SamplerStatsTest, TinyTopPKeepsOnlyTheBest) {
  SamplingParams p = Random();
  p.top_p = 1e-6f;
  ExpectFrequencies(Histogram(p, kLogits, 1000), {1, 0, 0, 0, 0, 0, 0, 0}, 1000);
}

TEST(SamplerStatsTest, MinPThresholdIsRelativeToTheBest) {
  SamplingParams p = Random();
  p.min_p = 0.2f;
  // Kept iff p_i >= 0.2 p_max ⟺ logit_i >= 2 + ln 0.2 = 0.39: ids 0..3.
  const std::vector<double> probs = Softmax(kLogits);
  std::vector<bool> keep(probs.size());
  for (size_t i = 0; i < probs.size(); ++i) {
    ASSERT_GT(std::abs(probs[i] - 0.2 * probs[0]), 1e-3) << "test logits sit on the boundary";
    keep[i] = probs[i] >= 0.2 * probs[0];
  }
  ASSERT_EQ(keep, (std::vector<bool>{true, true, true, true, false, false, false, false}));
  ExpectFrequencies(Histogram(p, kLogits, kDraws), Restrict(probs, keep), kDraws);
}

TEST(SamplerStatsTest, MinPOfOneKeepsAllTokensTiedForBest) {
  SamplingParams p = Random();
  p.min_p = 1.0f;
  const std::vector<float> logits = {1.0f, 3.0f, 3.0f, 2.99f};
  ExpectFrequencies(Histogram(p, logits, kDraws), {0.0, 0.5, 0.5, 0.0}, kDraws);
}

TEST(SamplerStatsTest, TopPSeesTheTopKRenormalizedDistribution) {
  // Probabilities 0.4, 0.3, 0.2, 0.1. Alone, top_p = 0.5 keeps {0, 1} (0.4 < 0.5). After top_k = 2
  // the survivors are renormalized to 4/7, 3/7, and 4/7 >= 0.5 already: only token 0 is left.
  const std::vector<float> logits = {std::log(0.4f), std::log(0.3f), std::log(0.2f),
                                     std::log(0.1f)};
  SamplingParams p = Random();
  p.top_p = 0.5f;
  ExpectFrequencies(Histogram(p, logits, kDraws), {4 / 7.0, 3 / 7.0, 0, 0}, kDraws);
  p.top_k = 2;
  ExpectFrequencies(Histogram(p, logits, kDraws), {1, 0, 0, 0}, kDraws);
}

TEST(SamplerStatsTest, AllTruncationsCompose) {
  // top_k = 6 drops ids 6, 7; top_p = 0.95 of the renormalized six drops id 5 (masses above ids 4
  // and 5: 0.909 < 0.95 <= 0.965); min_p = 0.25 then drops ids 3 and 4 (e^-1.5 = 0.223 < 0.25).
  // The reference applies the same steps to the exact distribution.
  SamplingParams p = Random();
  p.top_k = 6;
  p.top_p = 0.95f;
  p.min_p = 0.25f;
  std::vector<double> probs = Restrict(Softmax(kLogits), {1, 1, 1, 1, 1, 1, 0, 0});
  std::vector<bool> keep(probs.size(), false);
  double mass = 0.0;
  for (size_t id : RankOrder(probs)) {
    if (mass >= p.top_p) break;
    keep[id] = true;
    mass += probs[id];
  }
  probs = Restrict(probs, keep);
  for (size_t i = 0; i < probs.size(); ++i) keep[i] = probs[i] >= p.min_p * probs[0];
  ASSERT_EQ(keep, (std::vector<bool>{true, true, true, false, false, false, false, false}));
  ExpectFrequencies(Histogram(p, kLogits, kDraws), Restrict(probs, keep), kDraws);
}

TEST(SamplerStatsTest, MaskedTokensAreNeverDrawn) {
  const std::vector<float> logits = {-kInf, 0.0f, -kInf, 0.0f, std::nanf("")};
  ExpectFrequencies(Histogram(Random(), logits, kDraws), {0, 0.5, 0, 0.5, 0}, kDraws);
}

TEST(SamplerStatsTest, PenaltiesShiftTheSampledDistribution) {
  SamplingParams p = Random();
  p.presence_penalty = std::log(2.0f);  // halves token 0's odds
  Sampler sampler(p);
  TokenHistory history;
  history.AddOutput(0);
  std::vector<int> counts(2, 0);
  for (int i = 0; i < kDraws; ++i) {
    std::vector<float> logits = {0.0f, 0.0f};
    ++counts[static_cast<size_t>(sampler.Sample(logits, history))];
  }
  ExpectFrequencies(counts, {1 / 3.0, 2 / 3.0}, kDraws);
}

// ---------------------------------------------------------------------------------------------
// The filters on a full-size vocabulary: the lazy top-p and the top-k selection must keep exactly
// the set that a full sort would.

// Quantized so that many logits tie and the tie-breaking rule matters.
std::vector<float> VocabLogits(uint64_t seed, float scale) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> logits(49152);
  for (float& v : logits) v = std::round(scale * normal(rng) * 4.0f) / 4.0f;
  return logits;
}

std::vector<int32_t> SortedIds(const std::vector<Candidate>& candidates) {
  std::vector<int32_t> ids;
  for (const Candidate& c : candidates) ids.push_back(c.id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

// The reference order: a full sort, more likely first, ties to the lower id.
void FullSort(std::vector<Candidate>& candidates) {
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  });
}

TEST(CandidateFiltersTest, TopPMatchesAFullSort) {
  for (float scale : {0.25f, 1.0f, 2.0f, 4.0f}) {
    for (float top_p : {0.1f, 0.5f, 0.9f, 0.99f}) {
      std::vector<Candidate> candidates;
      SelectTopK(VocabLogits(7, scale), 0, candidates);
      ASSERT_TRUE(ComputeWeights(candidates, 1.0f));
      std::vector<Candidate> reference = candidates;
      FullSort(reference);
      double total = 0.0;
      for (const Candidate& c : reference) total += c.weight;
      double mass = 0.0;
      size_t kept = 0;
      while (kept < reference.size() && mass < top_p * total) mass += reference[kept++].weight;
      reference.resize(kept);

      KeepTopP(candidates, top_p);
      EXPECT_EQ(SortedIds(candidates), SortedIds(reference)) << "scale " << scale << " p " << top_p;
    }
  }
}

TEST(CandidateFiltersTest, TopKMatchesAFullSortWithTies) {
  const std::vector<float> logits = VocabLogits(3, 1.0f);
  std::vector<Candidate> reference;
  for (size_t i = 0; i < logits.size(); ++i) {
    reference.push_back({logits[i], 0.0f, static_cast<int32_t>(i)});
  }
  FullSort(reference);
  for (int k : {1, 50, 1000}) {
    std::vector<Candidate> candidates;
    SelectTopK(logits, k, candidates);
    EXPECT_EQ(SortedIds(candidates),
              SortedIds(std::vector<Candidate>(reference.begin(), reference.begin() + k)))
        << "k " << k;
  }
}

TEST(CandidateFiltersTest, TopKSkipsMaskedLogitsAndMayKeepFewer) {
  const std::vector<float> logits = {-kInf, 1.0f, std::nanf(""), 0.5f, -kInf};
  std::vector<Candidate> candidates;
  SelectTopK(logits, 3, candidates);
  EXPECT_EQ(SortedIds(candidates), (std::vector<int32_t>{1, 3}));
  SelectTopK(logits, 0, candidates);
  EXPECT_EQ(SortedIds(candidates), (std::vector<int32_t>{1, 3}));
}

TEST(CandidateFiltersTest, WeightsAreExpOfScaledLogitsRelativeToTheBest) {
  std::vector<Candidate> candidates = {{2.0f, 0, 0}, {1.0f, 0, 1}, {-1.0f, 0, 2}, {-300.0f, 0, 3}};
  ASSERT_TRUE(ComputeWeights(candidates, 2.0f));  // temperature 0.5
  EXPECT_EQ(candidates[0].weight, 1.0f);          // exactly 1: min-p relies on it
  EXPECT_NEAR(candidates[1].weight, std::exp(-2.0), 1e-7);
  EXPECT_NEAR(candidates[2].weight, std::exp(-6.0), 1e-9);
  EXPECT_EQ(candidates[3].weight, 0.0f);
  std::vector<Candidate> overflow = {{1e30f, 0, 0}, {1.0f, 0, 1}};
  EXPECT_FALSE(ComputeWeights(overflow, 1e10f));
}

TEST(FastExpTest, WithinAFewUlpOfStdExp) {
  double worst = 0.0;
  for (float x = -87.0f; x <= 0.0f; x += 0.00123f) {
    const double exact = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::abs(FastExpNonPositive(x) - exact) / exact);
  }
  EXPECT_LT(worst, 2e-7);
  EXPECT_EQ(FastExpNonPositive(0.0f), 1.0f);
  EXPECT_EQ(FastExpNonPositive(-100.0f), 0.0f);
  EXPECT_EQ(FastExpNonPositive(-kInf), 0.0f);
}

// ---------------------------------------------------------------------------------------------
// Seeds

std::vector<int32_t> Sequence(const SamplingParams& params, int n) {
  Sampler sampler(params);
  TokenHistory history;
  std::vector<int32_t> tokens;
  for (int i = 0; i < n; ++i) {
    std::vector<float> logits(64, 0.0f);  // uniform: every draw depends on the rng
    tokens.push_back(sampler.Sample(logits, history));
  }
  return tokens;
}

TEST(SamplerSeedTest, SameSeedSameSequence) {
  EXPECT_EQ(Sequence(Random(99), 200), Sequence(Random(99), 200));
  SamplingParams p = Random(5);
  p.top_k = 10;
  p.top_p = 0.9f;
  EXPECT_EQ(Sequence(p, 200), Sequence(p, 200));
}

TEST(SamplerSeedTest, DifferentSeedsDifferentSequences) {
  EXPECT_NE(Sequence(Random(1), 200), Sequence(Random(2), 200));
}

TEST(SamplerSeedTest, UnseededSamplersDiffer) {
  SamplingParams p;
  p.temperature = 1.0f;                           // no seed: std::random_device
  EXPECT_NE(Sequence(p, 200), Sequence(p, 200));  // equal with probability 64^-200
}

// ---------------------------------------------------------------------------------------------
// Logprobs

TEST(LogprobsTest, LogSoftmaxMatchesTheReference) {
  const std::vector<double> probs = Softmax(kLogits);
  for (size_t i = 0; i < kLogits.size(); ++i) {
    EXPECT_NEAR(LogSoftmaxAt(kLogits, static_cast<int32_t>(i)), std::log(probs[i]), 1e-6);
  }
  const std::vector<float> masked = {0.0f, -kInf};
  EXPECT_FLOAT_EQ(LogSoftmaxAt(masked, 0), 0.0f);
  EXPECT_EQ(LogSoftmaxAt(masked, 1), -kInf);
}

TEST(LogprobsTest, TopLogprobsAreSortedWithTiesToTheLowerId) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 3.0f, 0.0f};
  const auto top = TopLogprobs(logits, 3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].first, 1);
  EXPECT_EQ(top[1].first, 3);
  EXPECT_EQ(top[2].first, 2);
  const double lse = LogSumExp(logits);
  EXPECT_NEAR(top[0].second, 3.0 - lse, 1e-6);
  EXPECT_NEAR(top[2].second, 2.0 - lse, 1e-6);
  EXPECT_EQ(TopLogprobs(logits, 0).size(), 0u);
  EXPECT_EQ(TopLogprobs(logits, 99).size(), logits.size());
}

TEST(LogprobsTest, SampleWithLogprobReportsTheRawDistribution) {
  SamplingParams p = Random();
  p.temperature = 0.7f;
  p.repetition_penalty = 1.3f;
  p.top_k = 4;
  Sampler sampler(p);
  const std::vector<int32_t> prompt = {0, 1};
  TokenHistory history(prompt);
  for (int i = 0; i < 50; ++i) {
    std::vector<float> logits = kLogits;
    const SampleResult result = sampler.SampleWithLogprob(logits, history);
    EXPECT_NEAR(result.logprob, LogSoftmaxAt(kLogits, result.token), 1e-6);
  }
}

}  // namespace
}  // namespace kvserve
