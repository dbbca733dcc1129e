// The hand-written Prometheus registry: what it writes parses back (as an independent parser reads
// the text format) to the values recorded, from one thread or many.
#include "server/metrics_registry.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "tests/support/prometheus_text_parser.h"

namespace kvserve::metrics {
namespace {

using kvserve::testing::MetricsPage;
using kvserve::testing::ParseMetricsPage;

MetricsPage Scrape(Registry& registry) {
  auto page = ParseMetricsPage(registry.Serialize());
  EXPECT_TRUE(page.ok()) << page.status();
  return page.ok() ? *page : MetricsPage{};
}

size_t Occurrences(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

TEST(MetricsRegistryTest, CountersAndGaugesReadBackWithHelpAndType) {
  Registry registry;
  Counter& tokens = registry.AddCounter("kvserve_generation_tokens_total", "Generated tokens.");
  Gauge& running = registry.AddGauge("kvserve_num_requests_running", "Requests running.");
  tokens.Increment();
  tokens.Increment(41);
  running.Set(7);
  running.Increment(-2);

  EXPECT_EQ(tokens.value(), 42);
  EXPECT_EQ(running.value(), 5);
  const MetricsPage page = Scrape(registry);
  EXPECT_EQ(page.Value("kvserve_generation_tokens_total"), 42);
  EXPECT_EQ(page.Value("kvserve_num_requests_running"), 5);
  EXPECT_EQ(page.type.at("kvserve_generation_tokens_total"), "counter");
  EXPECT_EQ(page.type.at("kvserve_num_requests_running"), "gauge");
  EXPECT_EQ(page.help.at("kvserve_generation_tokens_total"), "Generated tokens.");
}

TEST(MetricsRegistryTest, CounterIgnoresNegativeAndNanIncrements) {
  Registry registry;
  Counter& c = registry.AddCounter("c_total", "c");
  c.Increment(3);
  c.Increment(-1);
  c.Increment(std::nan(""));
  EXPECT_EQ(c.value(), 3);
}

TEST(MetricsRegistryTest, SameNameWithOtherLabelsJoinsOneFamily) {
  Registry registry;
  Counter& eos = registry.AddCounter("kvserve_request_success_total", "Finished requests.",
                                     {{"finished_reason", "eos"}});
  Counter& length = registry.AddCounter("kvserve_request_success_total", "Finished requests.",
                                        {{"finished_reason", "length"}});
  eos.Increment(2);
  length.Increment(5);

  const std::string text = registry.Serialize();
  EXPECT_EQ(Occurrences(text, "# TYPE kvserve_request_success_total "), 1u) << text;
  EXPECT_EQ(Occurrences(text, "# HELP kvserve_request_success_total "), 1u) << text;
  const MetricsPage page = Scrape(registry);
  EXPECT_EQ(page.Value("kvserve_request_success_total", {{"finished_reason", "eos"}}), 2);
  EXPECT_EQ(page.Value("kvserve_request_success_total", {{"finished_reason", "length"}}), 5);
  EXPECT_EQ(page.Sum("kvserve_request_success_total"), 7);
}

TEST(MetricsRegistryTest, AddingAgainReturnsTheSameMetric) {
  Registry registry;
  Counter& a = registry.AddCounter("x_total", "x", {{"k", "v"}});
  Counter& b = registry.AddCounter("x_total", "x", {{"k", "v"}});
  EXPECT_EQ(&a, &b);
  Histogram& h1 = registry.AddHistogram("h", "h", {1, 2});
  Histogram& h2 = registry.AddHistogram("h", "h", {1, 2});
  EXPECT_EQ(&h1, &h2);
}

TEST(MetricsRegistryTest, LabelValuesAndHelpAreEscaped) {
  Registry registry;
  const std::string nasty = "a \"quoted\" back\\slash\nnewline, {braces} = sign";
  registry.AddGauge("g", "help with \\ and\nnewline", {{"model", nasty}, {"b", ""}}).Set(1.5);

  const std::string text = registry.Serialize();
  EXPECT_EQ(Occurrences(text, "\n"), 3u) << "one line each for HELP, TYPE and the sample:\n"
                                         << text;
  const MetricsPage page = Scrape(registry);
  EXPECT_EQ(page.Value("g", {{"model", nasty}, {"b", ""}}), 1.5);
  EXPECT_EQ(page.help.at("g"), "help with \\ and\nnewline");
}

TEST(MetricsRegistryTest, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Registry registry;
  Histogram& h = registry.AddHistogram("kvserve_time_to_first_token_seconds", "TTFT.",
                                       {0.5, 0.1, 1, 0.1}, {{"model", "m"}});
  for (double v : {0.05, 0.1, 0.3, 0.7, 0.9, 3.0}) h.Observe(v);

  EXPECT_EQ(h.count(), 6u);
  EXPECT_DOUBLE_EQ(h.sum(), 5.05);
  const MetricsPage page = Scrape(registry);
  const std::string name = "kvserve_time_to_first_token_seconds";
  EXPECT_EQ(page.type.at(name), "histogram");
  // Bounds sorted and deduplicated; `le` inclusive (0.1 falls in le="0.1").
  const auto buckets = page.Samples(name + "_bucket");
  std::vector<std::string> les;
  std::vector<double> counts;
  for (const auto& s : buckets) {
    EXPECT_EQ(s.labels.at("model"), "m");
    les.push_back(s.labels.at("le"));
    counts.push_back(s.value);
  }
  EXPECT_EQ(les, (std::vector<std::string>{"0.1", "0.5", "1", "+Inf"}));
  EXPECT_EQ(counts, (std::vector<double>{2, 3, 5, 6}));
  EXPECT_EQ(page.Value(name + "_count", {{"model", "m"}}), 6);
  EXPECT_DOUBLE_EQ(*page.Value(name + "_sum", {{"model", "m"}}), 5.05);
}

TEST(MetricsRegistryTest, HistogramWithoutObservationsReportsZeros) {
  Registry registry;
  registry.AddHistogram("empty_seconds", "e", {1, 2, 4});
  const MetricsPage page = Scrape(registry);
  EXPECT_EQ(page.Samples("empty_seconds_bucket").size(), 4u);
  EXPECT_EQ(page.Sum("empty_seconds_bucket"), 0);
  EXPECT_EQ(page.Value("empty_seconds_count"), 0);
  EXPECT_EQ(page.Value("empty_seconds_sum"), 0);
}

TEST(MetricsRegistryTest, CollectHooksRunBeforeEachSerialize) {
  Registry registry;
  Gauge& waiting = registry.AddGauge("kvserve_num_requests_waiting", "Queued requests.");
  int calls = 0;
  registry.AddCollectHook([&] { waiting.Set(++calls * 10); });
  EXPECT_EQ(Scrape(registry).Value("kvserve_num_requests_waiting"), 10);
  EXPECT_EQ(Scrape(registry).Value("kvserve_num_requests_waiting"), 20);
}

TEST(MetricsRegistryTest, CollectHookMayAddMetrics) {
  Registry registry;
  registry.AddCollectHook([&] { registry.AddGauge("late", "added by a hook").Set(3); });
  EXPECT_EQ(Scrape(registry).Value("late"), 3);
}

TEST(MetricsRegistryTest, ConcurrentUpdatesAreAllCountedAndPagesStayConsistent) {
  Registry registry;
  Counter& total = registry.AddCounter("ops_total", "ops");
  Histogram& latency = registry.AddHistogram("op_seconds", "op", {1, 2, 3});
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Threads also register: the same name and labels give the same counter.
      Counter& mine = registry.AddCounter("per_thread_total", "per thread",
                                          {{"thread", std::to_string(t % 2)}});
      for (int i = 0; i < kPerThread; ++i) {
        total.Increment();
        mine.Increment();
        latency.Observe(i % 4);  // 0, 1, 2, 3: integers, so the sum is exact
      }
    });
  }
  // Scrape while they run: every page parses and its histogram agrees with itself.
  for (int i = 0; i < 20; ++i) {
    const MetricsPage page = Scrape(registry);
    const auto buckets = page.Samples("op_seconds_bucket");
    ASSERT_EQ(buckets.size(), 4u);
    EXPECT_TRUE(std::is_sorted(buckets.begin(), buckets.end(),
                               [](const auto& a, const auto& b) { return a.value < b.value; }));
    EXPECT_EQ(buckets.back().value, page.Value("op_seconds_count"));
  }
  for (auto& t : threads) t.join();

  constexpr double kAll = double{kThreads} * kPerThread;
  const MetricsPage page = Scrape(registry);
  EXPECT_EQ(page.Value("ops_total"), kAll);
  EXPECT_EQ(page.Value("per_thread_total", {{"thread", "0"}}), kAll / 2);
  EXPECT_EQ(page.Value("per_thread_total", {{"thread", "1"}}), kAll / 2);
  EXPECT_EQ(page.Value("op_seconds_count"), kAll);
  EXPECT_EQ(page.Value("op_seconds_sum"), kAll / 4 * (0 + 1 + 2 + 3));
  EXPECT_EQ(page.Value("op_seconds_bucket", {{"le", "1"}}), kAll / 2);
}

TEST(MetricsRegistryDeathTest, OneNameAsTwoTypesIsAProgrammingError) {
  Registry registry;
  registry.AddCounter("dup_total", "d");
  EXPECT_DEATH(registry.AddGauge("dup_total", "d"), "dup_total added as gauge but is a counter");
}

TEST(MetricsRegistryDeathTest, InvalidNamesAreProgrammingErrors) {
  Registry registry;
  EXPECT_DEATH(registry.AddCounter("bad-name_total", "b"), "invalid metric name");
  EXPECT_DEATH(registry.AddGauge("g", "g", {{"9lives", "x"}}), "invalid label name");
  EXPECT_DEATH(registry.AddHistogram("h", "h", {1}, {{"le", "x"}}), "invalid label name");
}

}  // namespace
}  // namespace kvserve::metrics
