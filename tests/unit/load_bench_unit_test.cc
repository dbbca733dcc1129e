// kvserve-bench's pieces without a server: gamma/Poisson arrivals, the datasets' lengths, the
// policy mix, --goodput parsing and vLLM's statistics.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "tools/bench/bench_dataset.h"
#include "tools/bench/serve_bench.h"

namespace kvserve::bench {
namespace {

// Mean and coefficient of variation of the gaps between arrivals.
std::pair<double, double> GapStats(const std::vector<double>& times) {
  std::vector<double> gaps;
  for (size_t i = 1; i < times.size(); ++i) gaps.push_back(times[i] - times[i - 1]);
  const double mean = std::accumulate(gaps.begin(), gaps.end(), 0.0) / gaps.size();
  double var = 0;
  for (double g : gaps) var += (g - mean) * (g - mean);
  return {mean, std::sqrt(var / gaps.size()) / mean};
}

TEST(LoadBenchArrivalsTest, PoissonGapsHaveTheRateAndUnitVariation) {
  const auto times = ArrivalTimes(20000, 8.0, 1.0, 7);
  EXPECT_EQ(times.front(), 0.0);
  EXPECT_TRUE(std::is_sorted(times.begin(), times.end()));
  const auto [mean, cv] = GapStats(times);
  EXPECT_NEAR(mean, 1.0 / 8.0, 0.005);
  EXPECT_NEAR(cv, 1.0, 0.03);  // exponential gaps
}

TEST(LoadBenchArrivalsTest, BurstinessShapesTheGapsAtTheSameRate) {
  // Gamma with shape k has a coefficient of variation 1/sqrt(k).
  const auto [bursty_mean, bursty_cv] = GapStats(ArrivalTimes(20000, 8.0, 0.25, 7));
  const auto [steady_mean, steady_cv] = GapStats(ArrivalTimes(20000, 8.0, 4.0, 7));
  EXPECT_NEAR(bursty_mean, 0.125, 0.01);
  EXPECT_NEAR(steady_mean, 0.125, 0.005);
  EXPECT_NEAR(bursty_cv, 2.0, 0.1);
  EXPECT_NEAR(steady_cv, 0.5, 0.03);
}

TEST(LoadBenchArrivalsTest, InfiniteRateSendsEverythingAtOnce) {
  for (double t : ArrivalTimes(10, std::numeric_limits<double>::infinity(), 1.0, 1)) {
    EXPECT_EQ(t, 0.0);
  }
}

TEST(LoadBenchDatasetTest, RandomLengthsStayInTheRangeRatio) {
  DatasetOptions o{.num_prompts = 500,
                   .seed = 3,
                   .random_input_len = 100,
                   .random_output_len = 20,
                   .random_range_ratio = 0.5};
  auto requests = BuildDataset(o, 512, 4096);
  ASSERT_TRUE(requests.ok()) << requests.status();
  ASSERT_EQ(requests->size(), 500u);
  int min_in = 1 << 30, max_in = 0;
  for (const BenchRequest& r : *requests) {
    EXPECT_EQ(static_cast<int>(r.prompt_ids.size()), r.input_len);
    min_in = std::min(min_in, r.input_len);
    max_in = std::max(max_in, r.input_len);
    EXPECT_GE(r.output_len, 10);
    EXPECT_LE(r.output_len, 30);
    for (int32_t id : r.prompt_ids) ASSERT_TRUE(id >= 3 && id < 512);
  }
  EXPECT_GE(min_in, 50);
  EXPECT_LE(max_in, 150);
  EXPECT_LT(min_in, 60) << "the range is used";
  EXPECT_GT(max_in, 140) << "the range is used";
}

TEST(LoadBenchDatasetTest, LongPromptsSpan8KTo32KWithinTheContext) {
  DatasetOptions o{.name = "long", .num_prompts = 50, .random_output_len = 64};
  auto requests = BuildDataset(o, 32000, 131072);
  ASSERT_TRUE(requests.ok()) << requests.status();
  for (const BenchRequest& r : *requests) {
    EXPECT_GE(r.input_len, 8192);
    EXPECT_LE(r.input_len, 32768);
  }
  // A 16K context caps them at 16K - 64.
  auto capped = BuildDataset(o, 32000, 16384);
  ASSERT_TRUE(capped.ok()) << capped.status();
  for (const BenchRequest& r : *capped) EXPECT_LE(r.input_len + r.output_len, 16384);
  EXPECT_FALSE(BuildDataset(o, 32000, 4096).ok());
}

TEST(LoadBenchDatasetTest, PolicyMixFollowsItsWeights) {
  auto mix = ParsePolicyMix("full:3,freekv:1");
  ASSERT_TRUE(mix.ok()) << mix.status();
  std::vector<BenchRequest> requests(4000);
  AssignPolicies(*mix, 1, requests);
  const auto full = std::count_if(requests.begin(), requests.end(),
                                  [](const BenchRequest& r) { return r.kv_policy == "full"; });
  EXPECT_NEAR(full / 4000.0, 0.75, 0.03);
  EXPECT_FALSE(ParsePolicyMix("full:0").ok());
  EXPECT_FALSE(ParsePolicyMix("full:x").ok());
  EXPECT_FALSE(ParsePolicyMix("").ok());
}

TEST(LoadBenchStatsTest, GoodputParsingAndVllmKeys) {
  auto slos = ParseGoodput({"ttft:200", "e2el:1500.5"});
  ASSERT_TRUE(slos.ok()) << slos.status();
  EXPECT_EQ(slos->at("ttft"), 200);
  EXPECT_EQ(slos->at("e2el"), 1500.5);
  EXPECT_FALSE(ParseGoodput({"ttft"}).ok());
  EXPECT_FALSE(ParseGoodput({"itl:5"}).ok());
  EXPECT_FALSE(ParseGoodput({"tpot:-1"}).ok());

  nlohmann::json out;
  AddLatencyStats(out, "ttft", {4, 1, 3, 2});
  EXPECT_DOUBLE_EQ(out["mean_ttft_ms"].get<double>(), 2.5);
  EXPECT_DOUBLE_EQ(out["median_ttft_ms"].get<double>(), 2.5);  // numpy.percentile's interpolation
  EXPECT_DOUBLE_EQ(out["p50_ttft_ms"].get<double>(), 2.5);
  EXPECT_DOUBLE_EQ(out["p99_ttft_ms"].get<double>(), 3.97);
  EXPECT_NEAR(out["std_ttft_ms"].get<double>(), std::sqrt(1.25), 1e-12);
}

}  // namespace
}  // namespace kvserve::bench
