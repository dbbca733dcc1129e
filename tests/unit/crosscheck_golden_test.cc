// The engine's forward pass against an independent float64 implementation: golden next-token
// logits computed by tools/crosscheck_logits.py --write-golden (NumPy, Hugging Face conventions,
// its own GGUF reader and tokenizer) and stored in tests/data, so CI needs none of its packages.
// A regression in the GGUF path, RoPE, attention or the LM head moves the logits far beyond the
// bounds below (crosscheck_logits.py's docstring lists what such bugs cost).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <set>

#include "engine/kv/page_pool.h"
#include "engine/kv/sequence_kv_cache.h"
#include "nlohmann/json.hpp"
#include "tests/support/model_fixtures.h"
#include "tests/support/teacher_forced.h"

namespace kvserve::testing {
namespace {

using nlohmann::json;

// The engine runs on fp32 weights (--weights-dtype f32) and on the file's stored Q4_1 / Q8_0
// matrices (the default), whose dot kernels quantize activations (kernels/cpu/q8_activations.h),
// with fp32 KV and with the CPU's default fp16 KV (--kv-dtype).
// fp32 against float64 with the same dequantized weights: only rounding differs. The script
// measured up to 3e-6 of the logit scale (~25) on short prompts; 1e-4 of it is its own bound.
// The stored path adds the activations' quantization error (16-bit steps per 32 elements):
// measured up to 2.4e-3 over these prompts; the bound leaves 4x. fp16 KV rounds every K and V
// element to 11 bits: measured up to 7.7e-3 on the next token and 4.0e-2 over the 256
// teacher-forced decode steps; the bounds leave about 2.5x.
struct Setup {
  const char* weights_dtype;
  const char* kv_dtype;
  double max_abs_diff;         // next-token logits
  double max_abs_diff_decode;  // the teacher-forced decode steps' top-1 logits
};

std::string SetupName(const ::testing::TestParamInfo<Setup>& info) {
  return std::string(info.param.weights_dtype) + "_weights_" + info.param.kv_dtype + "_kv";
}
// Top-k membership is compared only where the reference's neighbouring logits are this far apart.
constexpr double kTieGap = 1e-3;

json LoadGolden() {
  std::ifstream in(KVSERVE_TEST_DATA_DIR "/smollm2-135m-instruct/crosscheck_golden.json");
  EXPECT_TRUE(in.good()) << "tests/data/smollm2-135m-instruct/crosscheck_golden.json missing";
  return json::parse(in, nullptr, /*allow_exceptions=*/false);
}

class CrosscheckGoldenTest : public ::testing::TestWithParam<Setup> {
 protected:
  void SetUp() override {
    golden_ = LoadGolden();
    ASSERT_FALSE(golden_.is_discarded());
    m_ = LoadSmolLm2(GetParam().weights_dtype);
    if (m_.backend == nullptr) GTEST_SKIP() << "SmolLM2 GGUF absent (scripts/fetch-model.sh)";
    auto kv = ParseKvDtype(GetParam().kv_dtype);
    ASSERT_TRUE(kv.ok()) << kv.status();
    ASSERT_TRUE(m_.backend->SetKvDtype(*kv).ok());
    ASSERT_EQ(m_.config.vocab_size, golden_.at("vocab_size").get<int>());
  }

  json golden_;
  CpuModel m_;
  const double kMaxAbsDiff = GetParam().max_abs_diff;
};

double LogSumExp(const std::vector<float>& row) {
  const double m = *std::max_element(row.begin(), row.end());
  double sum = 0;
  for (float v : row) sum += std::exp(v - m);
  return m + std::log(sum);
}

// Ids of the k largest logits, largest first (ties to the lower id, as NumPy's stable argsort).
std::vector<int> TopK(const std::vector<float>& row, int k) {
  std::vector<int> ids(row.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                    [&](int a, int b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
  ids.resize(k);
  return ids;
}

TEST_P(CrosscheckGoldenTest, NextTokenLogitsMatchFloat64Reference) {
  bool long_prompt = false;
  for (const json& p : golden_.at("prompts")) {
    const std::string name = p.at("name");
    const std::vector<int32_t> ids = p.at("ids");
    long_prompt = long_prompt || ids.size() > 1024;
    const auto rows = TeacherForcedLogits(*m_.backend, ids, static_cast<int>(ids.size()));
    ASSERT_EQ(rows.size(), 1u) << name;
    const std::vector<float>& got = rows[0];
    ASSERT_EQ(got.size(), static_cast<size_t>(m_.config.vocab_size)) << name;

    // Every stored logit: the top 64 and every 97th id.
    double max_diff = 0;
    for (const json& t : p.at("top")) {
      max_diff = std::max(max_diff, std::abs(got[t[0].get<int>()] - t[1].get<double>()));
    }
    const int stride = p.at("sample_stride");
    const std::vector<double> sample = p.at("sample");
    for (size_t i = 0; i < sample.size(); ++i) {
      max_diff = std::max(max_diff, std::abs(got[i * stride] - sample[i]));
    }
    // The normaliser covers the whole vocabulary: a wrong logit anywhere moves it.
    const double lse_diff = std::abs(LogSumExp(got) - p.at("logsumexp").get<double>());
    std::printf("%-12s %4zu tokens: max |Δlogit| %.2e over %zu ids, |Δlogsumexp| %.2e\n",
                name.c_str(), ids.size(), max_diff, p.at("top").size() + sample.size(), lse_diff);
    EXPECT_LE(max_diff, kMaxAbsDiff) << name;
    EXPECT_LE(lse_diff, kMaxAbsDiff) << name;

    // Top-5 in the reference's order, except where the reference itself nearly ties.
    const std::vector<int> top = TopK(got, 5);
    const json& ref = p.at("top");
    for (int r = 0; r < 5; ++r) {
      const double gap_above = r == 0 ? 1e9 : ref[r - 1][1].get<double>() - ref[r][1].get<double>();
      const double gap_below = ref[r][1].get<double>() - ref[r + 1][1].get<double>();
      if (std::min(gap_above, gap_below) < kTieGap) continue;
      EXPECT_EQ(top[r], ref[r][0].get<int>()) << name << ": rank " << r + 1;
    }
  }
  EXPECT_TRUE(long_prompt) << "the golden file should hold a prompt over 1K tokens";
}

// The long prompt teacher-forced: the prefix as one prefill chunk, then one token per decode step
// (attention over the cache the prefill wrote), each step's top-1 against the reference's.
TEST_P(CrosscheckGoldenTest, TeacherForcedTop1MatchesFloat64ReferenceOverLongPrompt) {
  const json& tf = golden_.at("teacher_forced");
  std::vector<int32_t> ids;
  for (const json& p : golden_.at("prompts")) {
    if (p.at("name") == tf.at("prompt")) ids = p.at("ids").get<std::vector<int32_t>>();
  }
  const int first = tf.at("first_position");
  const std::vector<int> top1 = tf.at("top1");
  const std::vector<double> top1_logit = tf.at("top1_logit");
  const std::vector<double> margin = tf.at("margin");
  ASSERT_GE(top1.size(), 256u);
  ASSERT_EQ(static_cast<size_t>(first) + top1.size() + 1, ids.size());
  ids.resize(ids.size() - 1);  // the last row is the next-token test's
  const auto rows = TeacherForcedLogits(*m_.backend, ids, first + 1);
  ASSERT_EQ(rows.size(), top1.size());
  int agree = 0, decisive = 0;
  double max_diff = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const int got = TopK(rows[i], 1)[0];
    agree += got == top1[i] ? 1 : 0;
    max_diff = std::max(max_diff, std::abs(rows[i][top1[i]] - top1_logit[i]));
    if (margin[i] >= kTieGap) {
      ++decisive;
      EXPECT_EQ(got, top1[i]) << "position " << first + static_cast<int>(i) << " (margin "
                              << margin[i] << ")";
    }
  }
  std::printf(
      "teacher-forced over positions %d-%zu: top-1 %d of %zu (%d decisive), max |Δ top-1 "
      "logit| %.2e\n",
      first, first + rows.size() - 1, agree, rows.size(), decisive, max_diff);
  EXPECT_LE(max_diff, GetParam().max_abs_diff_decode);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CrosscheckGoldenTest,
                         ::testing::Values(Setup{"f32", "f32", 2.5e-3, 2.5e-3},
                                           Setup{"stored", "f32", 1e-2, 1e-2},
                                           Setup{"stored", "f16", 2e-2, 1e-1}),
                         SetupName);

}  // namespace
}  // namespace kvserve::testing
