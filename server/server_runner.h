#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "server/inference_service.h"
#include "server/metrics_endpoint.h"
#include "server/metrics_scheduler_collectable.h"
#include "server/server_config.h"
#include "server/server_metrics.h"
#include "server/serving_engine.h"

namespace kvserve::server {

// The server's lifecycle, in the order main drives it: Listen (gRPC and /metrics up, health ""
// SERVING, kvserve.v1.Inference NOT_SERVING), LoadModel (the engine starts; readiness SERVING),
// Drain (readiness NOT_SERVING, new requests refused, running ones given time to finish), Shutdown
// (the rest cancelled, gRPC and /metrics stopped). Each phase is logged.
class ServerRunner {
 public:
  explicit ServerRunner(ServerConfig config);
  ~ServerRunner();  // Shutdown, if not done
  ServerRunner(const ServerRunner&) = delete;
  ServerRunner& operator=(const ServerRunner&) = delete;

  absl::Status Listen();
  int grpc_port() const { return grpc_port_; }
  int metrics_port() const;  // -1 when off

  absl::Status LoadModel();

  // Waits until nothing runs or waits, `timeout` passes, or `stop_waiting` says so (a second
  // signal); polled every 50 ms.
  void Drain(std::chrono::duration<double> timeout, const std::function<bool()>& stop_waiting);
  void Shutdown();

  const ServerConfig& config() const { return config_; }

 private:
  void LogConfig() const;
  void LogEngine() const;
  void SetReady(bool ready);

  ServerConfig config_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<SchedulerCollectable> scheduler_metrics_;
  ServerMetrics metrics_;
  std::unique_ptr<MetricsEndpoint> exposer_;
  std::unique_ptr<InferenceService> service_;
  std::unique_ptr<grpc::Server> server_;
  int grpc_port_ = 0;
  std::unique_ptr<ServingEngine> engine_;
  bool shut_down_ = false;
};

}  // namespace kvserve::server
