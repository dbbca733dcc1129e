#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "grpcpp/security/server_credentials.h"
#include "server/security_config.h"

namespace kvserve::server {

// The gRPC port's credentials: plaintext, or TLS from files that gRPC's file watcher re-reads
// every tls_reload_s seconds (a replaced certificate is served without a restart; replace key and
// certificate together, e.g. by renaming a directory or swapping a symlink, as Kubernetes does
// with mounted Secrets). With tls_client_ca, clients must present a certificate it signed.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const SecurityConfig& config);

}  // namespace kvserve::server
