#pragma once

#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/client_interceptor.h"

namespace kvserve {

// How the clients (kvserve-cli client/health, kvserve-bench) reach a server that asks for TLS,
// mutual TLS or an API key (README § Security): the server's flags, from the other side.
struct ClientConnectionOptions {
  std::string api_key;       // sent as `authorization: Bearer KEY` on every call
  std::string api_key_file;  // the key on the file's first line (keeps it out of `ps`)
  bool tls = false;          // TLS with the system's roots; implied by the files below
  std::string tls_ca;        // PEM roots to trust instead of the system's
  std::string tls_cert;      // client certificate chain (mutual TLS), with --tls-key
  std::string tls_key;
};

inline void AddClientConnectionFlags(CLI::App& app, ClientConnectionOptions& o) {
  auto* key = app.add_option("--api-key", o.api_key,
                             "API key, sent as 'authorization: Bearer KEY' (or KVSERVE_API_KEY)")
                  ->envname("KVSERVE_API_KEY");
  app.add_option("--api-key-file", o.api_key_file, "file whose first line is the API key")
      ->excludes(key);
  app.add_flag("--tls", o.tls, "connect with TLS (the system's root certificates)");
  app.add_option("--tls-ca", o.tls_ca, "PEM root certificates to trust (implies --tls)");
  app.add_option("--tls-cert", o.tls_cert,
                 "PEM client certificate for mutual TLS (with --tls-key)");
  app.add_option("--tls-key", o.tls_key, "PEM private key of --tls-cert");
}

namespace client_connection_internal {

inline absl::StatusOr<std::string> ReadFile(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read '", path, "'"));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Adds `authorization` to every call's initial metadata.
class AuthorizationInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit AuthorizationInterceptor(std::string value) : value_(std::move(value)) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace("authorization", value_);
    }
    methods->Proceed();
  }

 private:
  std::string value_;
};

class AuthorizationInterceptorFactory
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit AuthorizationInterceptorFactory(std::string value) : value_(std::move(value)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new AuthorizationInterceptor(value_);
  }

 private:
  std::string value_;
};

}  // namespace client_connection_internal

// The channel to `target` as `o` asks (plaintext when no TLS option is given); errors name the
// flag (a file that cannot be read, a certificate without its key).
inline absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenClientChannel(
    const std::string& target, const ClientConnectionOptions& o,
    const grpc::ChannelArguments& args = {}) {
  namespace internal = client_connection_internal;
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (o.tls || !o.tls_ca.empty() || !o.tls_cert.empty()) {
    grpc::SslCredentialsOptions ssl;
    if (!o.tls_ca.empty()) {
      auto roots = internal::ReadFile(o.tls_ca, "--tls-ca");
      if (!roots.ok()) return roots.status();
      ssl.pem_root_certs = *std::move(roots);
    }
    if (!o.tls_cert.empty()) {
      auto cert = internal::ReadFile(o.tls_cert, "--tls-cert");
      if (!cert.ok()) return cert.status();
      auto key = internal::ReadFile(o.tls_key, "--tls-key");
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *std::move(cert);
      ssl.pem_private_key = *std::move(key);
    }
    credentials = grpc::SslCredentials(ssl);
  }
  std::string key = o.api_key;
  if (!o.api_key_file.empty()) {
    auto text = internal::ReadFile(o.api_key_file, "--api-key-file");
    if (!text.ok()) return text.status();
    key = std::string(absl::StripAsciiWhitespace(text->substr(0, text->find('\n'))));
    if (key.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--api-key-file: '", o.api_key_file, "' has no key on its first line"));
    }
  }
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  if (!key.empty()) {
    interceptors.push_back(
        std::make_unique<internal::AuthorizationInterceptorFactory>("Bearer " + key));
  }
  return grpc::experimental::CreateCustomChannelWithInterceptors(target, credentials, args,
                                                                 std::move(interceptors));
}

}  // namespace kvserve
