#include "server/grpc_status.h"

#include <string>

namespace kvserve::server {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // Both enums are google.rpc.Code; a code outside it (never produced by Abseil) becomes UNKNOWN.
  const int code = static_cast<int>(status.code());
  const auto grpc_code = code >= 0 && code <= grpc::StatusCode::UNAUTHENTICATED
                             ? static_cast<grpc::StatusCode>(code)
                             : grpc::StatusCode::UNKNOWN;
  return grpc::Status(grpc_code, std::string(status.message()));
}

}  // namespace kvserve::server
