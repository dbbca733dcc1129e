// The /metrics HTTP endpoint over a real loopback socket: what Prometheus gets, what other requests
// get, and that broken or stalled clients never stop it.
#include "server/http_exposer.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "tests/support/loopback_http.h"
#include "tests/support/prometheus_text_parser.h"

namespace kvserve::metrics {
namespace {

using kvserve::testing::ConnectLoopback;
using kvserve::testing::HttpGet;
using kvserve::testing::ParseMetricsPage;
using kvserve::testing::SendHttp;

std::unique_ptr<HttpExposer> StartOnLoopback(Registry& registry) {
  auto exposer = HttpExposer::Start("127.0.0.1", 0, registry);
  EXPECT_TRUE(exposer.ok()) << exposer.status();
  return exposer.ok() ? *std::move(exposer) : nullptr;
}

TEST(HttpExposerTest, ServesTheRegistryOnMetrics) {
  Registry registry;
  Counter& requests = registry.AddCounter("kvserve_request_success_total", "Finished requests.",
                                          {{"finished_reason", "stop"}});
  requests.Increment(3);
  auto exposer = StartOnLoopback(registry);
  ASSERT_NE(exposer, nullptr);
  EXPECT_GT(exposer->port(), 0);

  auto response = HttpGet(exposer->port(), "/metrics");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(response->headers["connection"], "close");
  EXPECT_EQ(response->headers["content-length"], std::to_string(response->body.size()));
  auto page = ParseMetricsPage(response->body);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->Value("kvserve_request_success_total", {{"finished_reason", "stop"}}), 3);
}

TEST(HttpExposerTest, EachScrapeSeesCurrentValues) {
  Registry registry;
  Gauge& running = registry.AddGauge("kvserve_num_requests_running", "Running.");
  auto exposer = StartOnLoopback(registry);
  ASSERT_NE(exposer, nullptr);
  for (int v : {1, 5, 2}) {
    running.Set(v);
    auto response = HttpGet(exposer->port(), "/metrics?format=text");
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(ParseMetricsPage(response->body)->Value("kvserve_num_requests_running"), v);
  }
}

TEST(HttpExposerTest, OtherPathsAre404AndOtherMethods405) {
  Registry registry;
  auto exposer = StartOnLoopback(registry);
  ASSERT_NE(exposer, nullptr);
  const int port = exposer->port();
  EXPECT_EQ(HttpGet(port, "/")->status, 404);
  EXPECT_EQ(HttpGet(port, "/metricsx")->status, 404);
  auto post = SendHttp(port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
  ASSERT_TRUE(post.ok()) << post.status();
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(post->headers["allow"], "GET, HEAD");
  EXPECT_EQ(SendHttp(port, "DELETE /metrics HTTP/1.1\r\n\r\n")->status, 405);
}

TEST(HttpExposerTest, HeadAnswersWithoutABody) {
  Registry registry;
  registry.AddCounter("c_total", "c").Increment();
  auto exposer = StartOnLoopback(registry);
  ASSERT_NE(exposer, nullptr);
  auto head = SendHttp(exposer->port(), "HEAD /metrics HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->status, 200);
  EXPECT_TRUE(head->body.empty());
  EXPECT_GT(std::stoi(head->headers["content-length"]), 0);
}

TEST(HttpExposerTest, MalformedRequestsGet400) {
  Registry registry;
  auto exposer = StartOnLoopback(registry);
  ASSERT_NE(exposer, nullptr);
  for (const char* raw : {"garbage\r\n\r\n", "GET /metrics\r\n\r\n",
                          "get /metrics HTTP/1.1\r\n\r\n", "GET /metrics SMTP/1.0\r\n\r\n"}) {
    auto response = SendHttp(exposer->port(), raw);
    ASSERT_TRUE(response.ok()) << raw << ": " << response.status();
    EXPECT_EQ(response->status, 400) << raw;
  }
}

TEST(HttpExposerTest, OversizedRequestHeadIsRefused) {
  Registry registry;
  auto exposer = StartOnLoopback(registry);
  ASSERT_NE(exposer, nullptr);
  const std::string huge = "GET /metrics HTTP/1.1\r\nX-Filler: " + std::string(64 * 1024, 'a');
  auto response = SendHttp(exposer->port(), huge);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 431);
  EXPECT_EQ(HttpGet(exposer->port(), "/metrics")->status, 200);
}

TEST(HttpExposerTest, BindFailureNamesThePort) {
  Registry registry;
  auto first = StartOnLoopback(registry);
  ASSERT_NE(first, nullptr);
  auto second = HttpExposer::Start("127.0.0.1", first->port(), registry);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find(std::to_string(first->port())), std::string::npos)
      << second.status();
}

TEST(HttpExposerTest, UnknownHostIsAnError) {
  Registry registry;
  auto exposer = HttpExposer::Start("no-such-host.invalid", 0, registry);
  ASSERT_FALSE(exposer.ok());
  EXPECT_NE(exposer.status().message().find("no-such-host.invalid"), std::string::npos)
      << exposer.status();
}

TEST(HttpExposerTest, BrokenClientsDoNotStopIt) {
  Registry registry;
  // A page larger than the socket buffers, so a client that never reads breaks the send.
  for (int i = 0; i < 5000; ++i) {
    registry.AddCounter("big_total", "b", {{"i", std::to_string(i) + std::string(500, 'x')}});
  }
  auto exposer = StartOnLoopback(registry);
  ASSERT_NE(exposer, nullptr);
  const int port = exposer->port();
  {  // Connects and leaves at once.
    const int fd = ConnectLoopback(port);
    ASSERT_GE(fd, 0);
    close(fd);
  }
  {  // Half a request, then gone.
    const int fd = ConnectLoopback(port);
    ASSERT_GE(fd, 0);
    ASSERT_GT(send(fd, "GET /met", 8, MSG_NOSIGNAL), 0);
    close(fd);
  }
  {  // A whole request, then gone without reading the (large) response.
    const int fd = ConnectLoopback(port);
    ASSERT_GE(fd, 0);
    const std::string req = "GET /metrics HTTP/1.1\r\n\r\n";
    ASSERT_GT(send(fd, req.data(), req.size(), MSG_NOSIGNAL), 0);
    close(fd);
  }
  auto response = HttpGet(port, "/metrics");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(ParseMetricsPage(response->body)->Samples("big_total").size(), 5000u);
}

TEST(HttpExposerTest, StopsWhileAClientStallsMidRequest) {
  Registry registry;
  auto exposer = StartOnLoopback(registry);
  ASSERT_NE(exposer, nullptr);
  const int fd = ConnectLoopback(exposer->port());
  ASSERT_GE(fd, 0);
  ASSERT_GT(send(fd, "GET /metrics HTTP/1.1\r\n", 23, MSG_NOSIGNAL), 0);
  exposer.reset();  // must not wait for the stalled client
  char byte;
  EXPECT_LE(recv(fd, &byte, 1, 0), 0) << "the connection is closed on stop";
  close(fd);
}

TEST(HttpExposerTest, ServesManyClientsFromSeveralThreads) {
  Registry registry;
  Counter& hits = registry.AddCounter("hits_total", "h");
  auto exposer = StartOnLoopback(registry);
  ASSERT_NE(exposer, nullptr);
  constexpr int kThreads = 6;
  constexpr int kScrapes = 15;
  std::vector<int> ok(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kScrapes; ++i) {
        hits.Increment();
        auto response = HttpGet(exposer->port(), "/metrics");
        if (response.ok() && response->status == 200 && ParseMetricsPage(response->body).ok()) {
          ++ok[t];
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(ok[t], kScrapes) << "thread " << t;
  EXPECT_EQ(ParseMetricsPage(HttpGet(exposer->port(), "/metrics")->body)->Value("hits_total"),
            kThreads * kScrapes);
}

}  // namespace
}  // namespace kvserve::metrics
