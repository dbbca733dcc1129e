#pragma once

#include "tests/support/prometheus_text_parser.h"

namespace kvserve::testing {

// GET /metrics from a server on loopback `port`, checked (200, Prometheus text content type) and
// parsed; failures are reported to the calling test and give an empty page.
MetricsPage ScrapeMetrics(int port);

}  // namespace kvserve::testing
