// The /metrics page of a real server, fetched over HTTP and parsed: its counters and histograms
// match the requests it served.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <thread>

#include "tests/support/grpc_test_client.h"
#include "tests/support/loopback_http.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/prometheus_text_parser.h"
#include "tests/support/server_process.h"

namespace kvserve::testing {
namespace {

namespace pb = kvserve::v1;

std::string ReasonLabel(pb::FinishReason reason) {
  switch (reason) {
    case pb::FINISH_REASON_EOS:
      return "eos";
    case pb::FINISH_REASON_MAX_TOKENS:
      return "max_tokens";
    case pb::FINISH_REASON_STOP_SEQUENCE:
      return "stop";
    case pb::FINISH_REASON_CANCELLED:
      return "cancelled";
    case pb::FINISH_REASON_DEADLINE:
      return "deadline";
    default:
      return "error";
  }
}

TEST(MetricsEndpointTest, CountersMatchTheRequestsServed) {
  auto server = ServerProcess::Start(ServerProcess::Stories260KArgs());
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = (*server)->NewStub();
  const int port = (*server)->metrics_port();

  const MetricsPage before = ScrapeMetrics(port);
  EXPECT_EQ(before.Sum("kvserve_request_success_total"), 0);
  EXPECT_EQ(before.Value("kvserve_generation_tokens_total"), 0);
  for (const char* family :
       {"kvserve_time_to_first_token_seconds", "kvserve_inter_token_latency_seconds",
        "kvserve_e2e_request_latency_seconds", "kvserve_request_queue_time_seconds"}) {
    EXPECT_EQ(before.type.count(family), 1u) << family;
    EXPECT_EQ(before.type.at(family), "histogram") << family;
  }
  for (const char* family : {"kvserve_num_requests_running", "kvserve_num_requests_waiting",
                             "kvserve_kv_cache_usage_ratio"}) {
    EXPECT_EQ(before.type.count(family), 1u) << family;
  }

  // Requests ending for different reasons: the token limit, EOS, a stop token id.
  std::vector<pb::GenerateRequest> requests;
  for (int i = 0; i < 3; ++i) requests.push_back(GreedyTextRequest("Once upon a time", 10 + i));
  requests.push_back(GreedyIdsRequest({1, 403, 407}, 400));
  pb::GenerateRequest stopped = GreedyTextRequest("Once upon a time", 50);
  stopped.mutable_sampling()->add_stop_token_ids(261);  // " a": soon in this story
  requests.push_back(stopped);

  std::map<std::string, int> finished;
  uint64_t prompt_tokens = 0, generated = 0;
  for (const auto& r : requests) {
    const StreamResult result = GenerateAll(*stub, r);
    ASSERT_TRUE(result.status.ok()) << Describe(result.status);
    ASSERT_TRUE(result.final.has_value());
    ++finished[ReasonLabel(result.final->finish_reason())];
    prompt_tokens += result.final->usage().prompt_tokens();
    generated += result.tokens.size();
  }
  EXPECT_GE(finished.size(), 2u) << "more than one finish reason";
  const StreamResult invalid = GenerateAll(*stub, GreedyIdsRequest({1, 9999}, 4));
  EXPECT_EQ(invalid.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // A request's metrics are recorded as it ends, not necessarily before its last message.
  MetricsPage page = ScrapeMetrics(port);
  for (int i = 0; i < 500 && page.Sum("kvserve_request_success_total") < requests.size(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    page = ScrapeMetrics(port);
  }
  EXPECT_EQ(page.Sum("kvserve_request_success_total"), requests.size());
  for (const auto& [reason, count] : finished) {
    EXPECT_EQ(page.Value("kvserve_request_success_total", {{"finished_reason", reason}}), count)
        << reason;
  }
  EXPECT_EQ(page.Value("kvserve_generation_tokens_total"), generated);
  EXPECT_EQ(page.Value("kvserve_prompt_tokens_total"), prompt_tokens);
  EXPECT_EQ(page.Value("kvserve_requests_rejected_total", {{"reason", "invalid"}}), 1);
  EXPECT_EQ(page.Value("kvserve_time_to_first_token_seconds_count"), requests.size());
  EXPECT_EQ(page.Value("kvserve_e2e_request_latency_seconds_count"), requests.size());
  EXPECT_EQ(page.Value("kvserve_num_requests_running"), 0);
  EXPECT_EQ(page.Value("kvserve_kv_cache_usage_ratio"), 0);
  // Inter-token gaps: at most one per token after a request's first.
  EXPECT_LE(*page.Value("kvserve_inter_token_latency_seconds_count"), generated - requests.size());

  // Every histogram's buckets are cumulative and end in +Inf == _count.
  for (const auto& [family, type] : page.type) {
    if (type != "histogram") continue;
    double previous = 0;
    const auto buckets = page.Samples(family + "_bucket");
    ASSERT_FALSE(buckets.empty()) << family;
    for (const MetricSample& b : buckets) {
      EXPECT_GE(b.value, previous) << family << " le=" << b.labels.at("le");
      previous = b.value;
    }
    EXPECT_EQ(buckets.back().labels.at("le"), "+Inf") << family;
    EXPECT_EQ(page.Value(family + "_count"), buckets.back().value) << family;
  }
}

TEST(MetricsEndpointTest, OtherPathsAreNotFound) {
  auto server = ServerProcess::Start(ServerProcess::Stories260KArgs());
  ASSERT_TRUE(server.ok()) << server.status();
  auto response = HttpGet((*server)->metrics_port(), "/");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 404);
}

// Issue 15 item 4: TCP connections to /metrics that send nothing do not keep a scrape from being
// answered (well before the endpoint drops them, MetricsEndpoint::kRequestTimeoutMs = 10 s).
TEST(MetricsEndpointTest, ServesAScrapeWhileOtherConnectionsSitIdle) {
  auto server = ServerProcess::Start(ServerProcess::Stories260KArgs());
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->metrics_port();
  std::vector<int> idle;
  for (int i = 0; i < 6; ++i) {
    const int fd = ConnectLoopback(port);
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto stub = (*server)->NewStub();
  ASSERT_TRUE(GenerateAll(*stub, GreedyTextRequest("Once upon a time", 4)).status.ok());
  for (int i = 0; i < 3; ++i) {
    auto response = HttpGet(port, "/metrics", std::chrono::seconds(5));
    ASSERT_TRUE(response.ok()) << response.status();
    ASSERT_EQ(response->status, 200);
    auto page = ParseMetricsPage(response->body);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_EQ(page->Value("kvserve_generation_tokens_total"), 4);
  }
  for (int fd : idle) close(fd);
}

// --metrics-host binds the endpoint apart from --host: here 127.0.0.2 (loopback too) while gRPC
// stays on 127.0.0.1.
TEST(MetricsEndpointTest, MetricsHostBindsTheEndpointApartFromGrpc) {
  std::vector<std::string> args = ServerProcess::Stories260KArgs();
  args.insert(args.end(), {"--metrics-host", "127.0.0.2"});
  auto server = ServerProcess::Start(args);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->metrics_port();
  EXPECT_NE((*server)->Log().find("metrics listening on 127.0.0.2:"), std::string::npos);
  EXPECT_LT(ConnectLoopback(port), 0) << "127.0.0.1 is not the metrics address";

  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.2", &addr.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string request = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  std::string reply;
  char buf[4096];
  for (ssize_t n; (n = recv(fd, buf, sizeof(buf), 0)) > 0;) reply.append(buf, n);
  close(fd);
  EXPECT_EQ(reply.rfind("HTTP/1.1 200", 0), 0u) << reply.substr(0, 200);
  EXPECT_NE(reply.find("kvserve_num_requests_running"), std::string::npos);
}

}  // namespace
}  // namespace kvserve::testing
