#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"

namespace kvserve::server {

// GET /metrics over HTTP: prometheus-cpp's pull Exposer (civetweb) serving the given collectables
// in the text format. Civetweb gives each open connection a worker thread until it sends a request
// or its request timeout passes, so the pool is sized for a few idle or slow clients beside the
// scrapers, and an idle connection is dropped after kRequestTimeoutMs.
class MetricsEndpoint {
 public:
  static constexpr int kWorkerThreads = 8;
  static constexpr int kRequestTimeoutMs = 10000;

  // `host` is an IP address or a name that resolves to one; port 0 picks a free port. The
  // collectables are held weakly: they must outlive the endpoint.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& host, int port,
      const std::vector<std::shared_ptr<prometheus::Collectable>>& collectables);

  int port() const { return port_; }

  // Stops civetweb promptly: its listener polls in 2 s rounds before it sees the stop flag, so a
  // connection is made to wake it.
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

 private:
  MetricsEndpoint(std::unique_ptr<prometheus::Exposer> exposer, int port, std::string wake_address)
      : exposer_(std::move(exposer)), port_(port), wake_address_(std::move(wake_address)) {}

  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_;
  std::string wake_address_;  // numeric address the endpoint answers on
};

}  // namespace kvserve::server
