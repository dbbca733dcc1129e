// ServerMetrics on prometheus-cpp, served by MetricsEndpoint and read back the way Prometheus reads
// it: over HTTP on loopback, parsed by a parser independent of the code that wrote the page.
#include "server/server_metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <thread>
#include <vector>

#include "server/metrics_endpoint.h"
#include "server/metrics_scheduler_collectable.h"
#include "tests/support/loopback_http.h"
#include "tests/support/metrics_scrape.h"

namespace kvserve::server {
namespace {

using testing::MetricsPage;
using testing::ScrapeMetrics;

struct Served {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::shared_ptr<SchedulerCollectable> scheduler = std::make_shared<SchedulerCollectable>();
  std::unique_ptr<MetricsEndpoint> endpoint;
};

std::unique_ptr<Served> ServeOnLoopback() {
  auto served = std::make_unique<Served>();
  auto endpoint = MetricsEndpoint::Start("127.0.0.1", 0, {served->registry, served->scheduler});
  EXPECT_TRUE(endpoint.ok()) << endpoint.status();
  if (endpoint.ok()) served->endpoint = *std::move(endpoint);
  return served;
}

SequenceOutput Finished(FinishReason reason, int prompt, int generated, const std::string& policy,
                        std::vector<int> kept) {
  SequenceOutput out;
  out.finished = true;
  out.finish_reason = reason;
  out.prompt_tokens = prompt;
  out.completion_tokens = generated;
  out.timing.queue_ms = 2;
  out.timing.prefill_ms = 30;
  out.timing.decode_ms = 70;
  out.kv.policy = policy;
  out.kv.kept_tokens = std::move(kept);
  out.kv.recalled_bytes = 4096;
  out.kv.corrections = 3;
  return out;
}

TEST(ServerMetricsTest, ScrapeReturnsEveryFamilyWithItsTypeAndZeroes) {
  auto served = ServeOnLoopback();
  ServerMetrics metrics(*served->registry, {}, {});
  const MetricsPage page = ScrapeMetrics(served->endpoint->port());
  const std::map<std::string, std::string> expected = {
      {"kvserve_time_to_first_token_seconds", "histogram"},
      {"kvserve_inter_token_latency_seconds", "histogram"},
      {"kvserve_e2e_request_latency_seconds", "histogram"},
      {"kvserve_request_queue_time_seconds", "histogram"},
      {"kvserve_request_prefill_time_seconds", "histogram"},
      {"kvserve_request_decode_time_seconds", "histogram"},
      {"kvserve_request_prompt_tokens", "histogram"},
      {"kvserve_request_generation_tokens", "histogram"},
      {"kvserve_num_requests_running", "gauge"},
      {"kvserve_num_requests_waiting", "gauge"},
      {"kvserve_kv_cache_usage_ratio", "gauge"},
      {"kvserve_kv_host_usage_ratio", "gauge"},
      {"kvserve_prompt_tokens_total", "counter"},
      {"kvserve_generation_tokens_total", "counter"},
      {"kvserve_request_success_total", "counter"},
      {"kvserve_num_preemptions_total", "counter"},
      {"kvserve_requests_rejected_total", "counter"},
      {"kvserve_kv_recall_bytes_total", "counter"},
      {"kvserve_freekv_corrections_total", "counter"},
  };
  for (const auto& [family, type] : expected) {
    ASSERT_EQ(page.type.count(family), 1u) << family;
    EXPECT_EQ(page.type.at(family), type) << family;
    EXPECT_FALSE(page.help.at(family).empty()) << family;
  }
  // Per-policy series appear as each policy first finishes a request.
  EXPECT_TRUE(page.Samples("kvserve_kv_tokens_kept_ratio").empty());
  EXPECT_EQ(page.Samples("kvserve_request_success_total").size(), 6u);
  EXPECT_EQ(page.Samples("kvserve_requests_rejected_total").size(), 3u);
  EXPECT_EQ(page.Value("kvserve_num_requests_waiting"), 0);
  EXPECT_EQ(page.Value("kvserve_time_to_first_token_seconds_count"), 0);
}

TEST(ServerMetricsTest, ObservationsAppearWithTheirLabelsAndBuckets) {
  auto served = ServeOnLoopback();
  ServerMetrics metrics(*served->registry, {0.1, 0.5}, {});
  metrics.ObserveFirstToken(0.05, 12);
  metrics.ObserveFirstToken(0.3, 8);
  metrics.ObserveFirstToken(0.7, 4);
  metrics.ObserveInterToken(0.004);
  metrics.CountGeneratedTokens(5);
  metrics.CountGeneratedTokens(0);
  metrics.ObserveFinished(Finished(FinishReason::kEos, 20, 5, "snapkv", {10, 10}), 0.2);
  metrics.ObserveFinished(Finished(FinishReason::kMaxTokens, 40, 1, "full", {40}), 0.4);
  metrics.CountRejected(absl::StatusCode::kResourceExhausted);
  metrics.CountRejected(absl::StatusCode::kInvalidArgument);
  metrics.CountRejected(absl::StatusCode::kInvalidArgument);

  const MetricsPage page = ScrapeMetrics(served->endpoint->port());
  // The configured TTFT buckets, cumulative, +Inf last.
  const auto buckets = page.Samples("kvserve_time_to_first_token_seconds_bucket");
  ASSERT_EQ(buckets.size(), 3u);
  EXPECT_EQ(buckets[0].labels.at("le"), "0.1");
  EXPECT_EQ(buckets[0].value, 1);
  EXPECT_EQ(buckets[1].labels.at("le"), "0.5");
  EXPECT_EQ(buckets[1].value, 2);
  EXPECT_EQ(buckets[2].labels.at("le"), "+Inf");
  EXPECT_EQ(buckets[2].value, 3);
  EXPECT_DOUBLE_EQ(*page.Value("kvserve_time_to_first_token_seconds_sum"), 1.05);
  EXPECT_EQ(page.Value("kvserve_prompt_tokens_total"), 24);
  EXPECT_EQ(page.Value("kvserve_generation_tokens_total"), 5);
  EXPECT_EQ(page.Value("kvserve_inter_token_latency_seconds_count"), 1);
  EXPECT_EQ(page.Value("kvserve_request_success_total", {{"finished_reason", "eos"}}), 1);
  EXPECT_EQ(page.Value("kvserve_request_success_total", {{"finished_reason", "max_tokens"}}), 1);
  EXPECT_EQ(page.Value("kvserve_request_success_total", {{"finished_reason", "stop"}}), 0);
  EXPECT_EQ(page.Value("kvserve_requests_rejected_total", {{"reason", "queue_full"}}), 1);
  EXPECT_EQ(page.Value("kvserve_requests_rejected_total", {{"reason", "invalid"}}), 2);
  EXPECT_EQ(page.Value("kvserve_kv_recall_bytes_total"), 8192);
  EXPECT_EQ(page.Value("kvserve_freekv_corrections_total"), 6);
  EXPECT_EQ(page.Value("kvserve_e2e_request_latency_seconds_count"), 2);
  EXPECT_EQ(page.Value("kvserve_request_generation_tokens_sum"), 6);
  // Kept ratio per policy: snapkv kept 10 of the 24 tokens a full cache holds; full kept all.
  EXPECT_DOUBLE_EQ(*page.Value("kvserve_kv_tokens_kept_ratio", {{"policy", "snapkv"}}),
                   10.0 / 24.0);
  EXPECT_EQ(page.Value("kvserve_kv_tokens_kept_ratio", {{"policy", "full"}}), 1);
  EXPECT_EQ(page.type.at("kvserve_kv_tokens_kept_ratio"), "gauge");
}

TEST(PrometheusEndpointTest, OtherPathsAre404AndTheEndpointStaysUp) {
  auto served = ServeOnLoopback();
  ServerMetrics metrics(*served->registry, {}, {});
  // Civetweb's 404 page once overflowed its worker's stack (metrics_endpoint.cc).
  for (const char* path : {"/", "/nothing/here", "/favicon.ico"}) {
    auto response = testing::HttpGet(served->endpoint->port(), path);
    ASSERT_TRUE(response.ok()) << path << ": " << response.status();
    EXPECT_EQ(response->status, 404) << path;
  }
  EXPECT_EQ(ScrapeMetrics(served->endpoint->port()).type.count("kvserve_generation_tokens_total"),
            1u);
}

// Issue 15 item 4: connections that never send a request hold civetweb workers; a scrape must
// still be answered, well before those connections time out.
TEST(PrometheusEndpointTest, ServesAScrapeWhileOtherConnectionsSitIdle) {
  auto served = ServeOnLoopback();
  ServerMetrics metrics(*served->registry, {}, {});
  metrics.CountGeneratedTokens(7);
  std::vector<int> idle;
  for (int i = 0; i < MetricsEndpoint::kWorkerThreads - 2; ++i) {
    const int fd = testing::ConnectLoopback(served->endpoint->port());
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  // Let the endpoint accept them and hand each to a worker.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  static_assert(MetricsEndpoint::kRequestTimeoutMs > 5000);
  for (int i = 0; i < 3; ++i) {
    auto response = testing::HttpGet(served->endpoint->port(), "/metrics", std::chrono::seconds(5));
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 200);
    EXPECT_NE(response->body.find("kvserve_generation_tokens_total 7"), std::string::npos);
  }
  for (int fd : idle) close(fd);
}

TEST(PrometheusEndpointTest, BindFailureNamesTheAddress) {
  auto first = ServeOnLoopback();
  auto second = MetricsEndpoint::Start("127.0.0.1", first->endpoint->port(), {first->registry});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find(absl::StrCat("127.0.0.1:", first->endpoint->port())),
            std::string::npos)
      << second.status();
}

TEST(PrometheusEndpointTest, UnknownHostIsAnError) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto endpoint = MetricsEndpoint::Start("no-such-host.invalid", 0, {registry});
  ASSERT_FALSE(endpoint.ok());
  EXPECT_NE(endpoint.status().message().find("no-such-host.invalid"), std::string::npos);
}

TEST(PrometheusEndpointTest, AHostNameIsResolvedFirst) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto endpoint = MetricsEndpoint::Start("localhost", 0, {registry});
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  // Civetweb itself takes numeric addresses only.
  EXPECT_GT((*endpoint)->port(), 0);
}

}  // namespace
}  // namespace kvserve::server
