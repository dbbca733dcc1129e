#pragma once

#include <string>

#include "absl/status/status.h"

namespace CLI {
class App;
}  // namespace CLI

namespace kvserve::server {

// Transport security and authentication of the gRPC port; the metrics endpoint's own address.
struct SecurityConfig {
  std::string tls_cert;       // PEM certificate chain; with tls_key: the gRPC port speaks TLS
  std::string tls_key;        // PEM private key
  std::string tls_client_ca;  // PEM CA bundle: clients must present a certificate it signed (mTLS)
  int tls_reload_s = 10;      // how often the three files are checked for replacement
  std::string api_key_file;   // one sha256 (hex) of an API key per line; empty: no authentication
  bool reflection = false;    // gRPC server reflection

  bool tls() const { return !tls_cert.empty(); }
};

// Registers --tls-cert, --tls-key, --tls-client-ca, --tls-reload-interval, --api-key-file and
// --reflection (--metrics-host is a server flag: ServerConfig::metrics_host).
void AddSecurityFlags(CLI::App& app, SecurityConfig& config);

// Flags that only make sense together (--tls-cert with --tls-key, --tls-client-ca with both).
absl::Status ValidateSecurityConfig(const SecurityConfig& config);

}  // namespace kvserve::server
