#pragma once

#include <atomic>
#include <optional>
#include <string>

#include "grpcpp/grpcpp.h"
#include "kvserve/v1/inference.grpc.pb.h"
#include "server/api_keys.h"
#include "server/request_owners.h"
#include "server/server_config.h"
#include "server/server_metrics.h"
#include "server/serving_engine.h"

namespace kvserve::server {

// kvserve.v1.Inference on gRPC's callback API. It serves from before the model has loaded
// (everything but GetServerStatus answers UNAVAILABLE "model is loading" until SetEngine) and
// refuses new Generate calls with UNAVAILABLE "server is draining" after BeginDrain.
class InferenceService final : public v1::Inference::CallbackService {
 public:
  InferenceService(const ServerConfig& config, ServerMetrics& metrics)
      : config_(config), metrics_(metrics) {}

  // Publishes the loaded engine; it must outlive the gRPC server.
  void SetEngine(ServingEngine* engine) { engine_.store(engine, std::memory_order_release); }
  void BeginDrain() { draining_.store(true, std::memory_order_release); }
  bool ready() const { return engine() != nullptr && !draining(); }
  // Before the server starts: every method then needs "authorization: Bearer KEY" with one of
  // `keys` (UNAUTHENTICATED otherwise), and Abort reaches only the caller's key's requests.
  void SetApiKeys(ApiKeys keys) { api_keys_ = std::move(keys); }
  const RequestOwners& owners() const { return owners_; }

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* context, const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Abort(grpc::CallbackServerContext* context,
                                  const v1::AbortRequest* request,
                                  v1::AbortResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const v1::GetModelInfoRequest* request,
                                         v1::ModelInfo* response) override;
  grpc::ServerUnaryReactor* GetServerStatus(grpc::CallbackServerContext* context,
                                            const v1::GetServerStatusRequest* request,
                                            v1::ServerStatus* response) override;

 private:
  ServingEngine* engine() const { return engine_.load(std::memory_order_acquire); }
  bool draining() const { return draining_.load(std::memory_order_acquire); }
  // The caller's key index (-1 when authentication is off), or UNAUTHENTICATED.
  grpc::Status Authenticate(const grpc::CallbackServerContext& context, int* owner) const;

  const ServerConfig& config_;
  ServerMetrics& metrics_;
  std::atomic<ServingEngine*> engine_{nullptr};
  std::atomic<bool> draining_{false};
  std::optional<ApiKeys> api_keys_;
  RequestOwners owners_;
};

}  // namespace kvserve::server
