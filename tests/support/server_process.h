#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "kvserve/v1/inference.grpc.pb.h"

namespace kvserve::testing {

// The real `kvserve` binary (KVSERVE_BIN_DIR) run as a child process on 127.0.0.1 with ephemeral
// gRPC and metrics ports, which it reads from the server's log ("gRPC listening on HOST:PORT",
// "metrics listening on HOST:PORT"). Start returns once grpc.health.v1 says kvserve.v1.Inference
// is SERVING. The destructor sends SIGTERM and reaps it (SIGKILL if it does not exit in time).
class ServerProcess {
 public:
  // `args` come after --host 127.0.0.1 --port 0 --metrics-port 0 (a later flag wins).
  // `credentials` are the channels' (null: plaintext), for a server started with --tls-cert.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::vector<std::string>& args,
      std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);
  // --model and --tokenizer of stories260K.
  static std::vector<std::string> Stories260KArgs();
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_port_; }
  std::string address() const;  // "127.0.0.1:PORT" (gRPC)
  pid_t pid() const { return pid_; }

  // A channel of its own (its own connection) to the server.
  std::shared_ptr<grpc::Channel> NewChannel() const;
  std::unique_ptr<kvserve::v1::Inference::Stub> NewStub() const;

  void Signal(int signal) const;
  // Waits for the process to end: its exit code, or 128 + the signal that killed it.
  absl::StatusOr<int> WaitForExit(std::chrono::seconds timeout);
  bool running() const { return pid_ > 0; }

  // Everything the server has written to stdout and stderr so far.
  std::string Log() const;

 private:
  ServerProcess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}
  absl::Status AwaitPorts(std::chrono::seconds timeout);
  absl::Status AwaitServing(std::chrono::seconds timeout);

  pid_t pid_;
  std::string log_path_;
  int grpc_port_ = 0;
  int metrics_port_ = 0;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
};

}  // namespace kvserve::testing
