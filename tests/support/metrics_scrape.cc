#include "tests/support/metrics_scrape.h"

#include <gtest/gtest.h>

#include "tests/support/loopback_http.h"

namespace kvserve::testing {

MetricsPage ScrapeMetrics(int port) {
  auto response = HttpGet(port, "/metrics");
  EXPECT_TRUE(response.ok()) << response.status();
  if (!response.ok()) return {};
  EXPECT_EQ(response->status, 200);
  // prometheus-cpp says "text/plain; charset=utf-8", which Prometheus reads as format 0.0.4.
  EXPECT_EQ(response->headers["content-type"].rfind("text/plain", 0), 0u);
  auto page = ParseMetricsPage(response->body);
  EXPECT_TRUE(page.ok()) << page.status();
  return page.ok() ? *page : MetricsPage{};
}

}  // namespace kvserve::testing
