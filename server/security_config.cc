#include "server/security_config.h"

#include "CLI/CLI.hpp"

namespace kvserve::server {

void AddSecurityFlags(CLI::App& app, SecurityConfig& c) {
  auto add = [&app](const std::string& flag, auto& value, const std::string& env,
                    const std::string& help) {
    return app.add_option(flag, value, help)->envname(env)->capture_default_str();
  };
  add("--tls-cert", c.tls_cert, "KVSERVE_TLS_CERT",
      "PEM certificate chain: the gRPC port speaks TLS (reloaded when the file is replaced)");
  add("--tls-key", c.tls_key, "KVSERVE_TLS_KEY", "PEM private key of --tls-cert");
  add("--tls-client-ca", c.tls_client_ca, "KVSERVE_TLS_CLIENT_CA",
      "PEM CA bundle: require and verify client certificates (mutual TLS)");
  add("--tls-reload-interval", c.tls_reload_s, "KVSERVE_TLS_RELOAD_INTERVAL",
      "seconds between checks for replaced TLS files")
      ->check(CLI::Range(1, 86400));
  add("--api-key-file", c.api_key_file, "KVSERVE_API_KEY_FILE",
      "file of sha256 hashes (hex) of accepted API keys, one per line; clients send "
      "'authorization: Bearer KEY'");
  app.add_flag("--reflection", c.reflection, "serve gRPC server reflection")
      ->envname("KVSERVE_REFLECTION")
      ->capture_default_str();
}

absl::Status ValidateSecurityConfig(const SecurityConfig& c) {
  if (c.tls_cert.empty() != c.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (!c.tls_client_ca.empty() && c.tls_cert.empty()) {
    return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
  }
  return absl::OkStatus();
}

}  // namespace kvserve::server
