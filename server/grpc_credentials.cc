#include "server/grpc_credentials.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace kvserve::server {
namespace {

// The file watcher logs a bad file and keeps serving; at startup a missing file is our error.
absl::Status CheckReadable(const std::string& path, const char* flag) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(flag, ": cannot read '", path, "'"));
  std::string first;
  std::getline(in, first);
  if (first.find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": '", path, "' is not a PEM file"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const SecurityConfig& config) {
  if (!config.tls()) return grpc::InsecureServerCredentials();
  KVSERVE_RETURN_IF_ERROR(CheckReadable(config.tls_cert, "--tls-cert"));
  KVSERVE_RETURN_IF_ERROR(CheckReadable(config.tls_key, "--tls-key"));
  const bool mutual = !config.tls_client_ca.empty();
  if (mutual) {
    KVSERVE_RETURN_IF_ERROR(CheckReadable(config.tls_client_ca, "--tls-client-ca"));
  }
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      config.tls_key, config.tls_cert, config.tls_client_ca,
      static_cast<unsigned int>(config.tls_reload_s));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (mutual) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  auto credentials = grpc::experimental::TlsServerCredentials(options);
  if (credentials == nullptr) {
    return absl::InvalidArgumentError("--tls-cert/--tls-key: gRPC refused the TLS options");
  }
  return credentials;
}

}  // namespace kvserve::server
