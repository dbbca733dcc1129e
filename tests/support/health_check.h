#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace kvserve::testing {

// grpc.health.v1.HealthCheckResponse.ServingStatus.
enum class HealthStatus { kUnknown = 0, kServing = 1, kNotServing = 2, kServiceUnknown = 3 };

// One grpc.health.v1.Health/Check call for `service` ("" = the whole server). The messages are
// encoded by hand (field 1 each way): Debian's gRPC installs no health.proto to compile against.
absl::StatusOr<HealthStatus> CheckHealth(const std::shared_ptr<grpc::Channel>& channel,
                                         const std::string& service,
                                         std::chrono::milliseconds timeout);

}  // namespace kvserve::testing
