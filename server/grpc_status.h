#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace kvserve::server {

// The gRPC status carrying `status`'s code and message: absl::StatusCode and grpc::StatusCode
// share their numbering (both follow google.rpc.Code), so the mapping is 1:1.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace kvserve::server
