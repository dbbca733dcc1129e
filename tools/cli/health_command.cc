// `kvserve-cli health`: one grpc.health.v1.Health/Check call, for container HEALTHCHECKs and
// Kubernetes exec probes. Exit 0 only when the service is SERVING; otherwise one line on stderr
// saying why, and exit 1. The messages are encoded by hand (field 1 each way): Debian's gRPC
// installs no health.proto to compile against.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <future>
#include <iostream>

#include "absl/status/status.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/wire_format_lite.h"
#include "tools/cli/commands.h"
#include "tools/common/client_connection.h"

namespace kvserve::cli {
namespace {

using google::protobuf::internal::WireFormatLite;

struct HealthOptions {
  std::string server;
  ClientConnectionOptions connection;  // TLS (health itself needs no API key)
  std::string service = "kvserve.v1.Inference";
  double timeout_s = 5;
};

grpc::ByteBuffer EncodeRequest(const std::string& service) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream out(&stream);
    WireFormatLite::WriteString(1, service, &out);
  }
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

// HealthCheckResponse.status (absent: 0, UNKNOWN); -1 when the message is malformed.
int DecodeStatus(const grpc::ByteBuffer& buffer) {
  grpc::Slice slice;
  if (!buffer.DumpToSingleSlice(&slice).ok()) return -1;
  google::protobuf::io::CodedInputStream in(slice.begin(), static_cast<int>(slice.size()));
  uint32_t status = 0;
  for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
    if (tag == WireFormatLite::MakeTag(1, WireFormatLite::WIRETYPE_VARINT)) {
      if (!in.ReadVarint32(&status)) return -1;
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return -1;
    }
  }
  return static_cast<int>(status);
}

const char* StatusName(int status) {
  switch (status) {
    case 0:
      return "UNKNOWN";
    case 1:
      return "SERVING";
    case 2:
      return "NOT_SERVING";
    case 3:
      return "SERVICE_UNKNOWN";
    default:
      return "malformed response";
  }
}

int RunHealth(const HealthOptions& o) {
  const std::string what = o.service.empty() ? "the server" : o.service;
  const auto channel = OpenClientChannel(o.server, o.connection);
  if (!channel.ok()) {
    std::cerr << "kvserve-cli: health: " << channel.status().message() << "\n";
    return 1;
  }
  grpc::GenericStub stub(*channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::microseconds(static_cast<int64_t>(o.timeout_s * 1e6)));
  const grpc::ByteBuffer request = EncodeRequest(o.service);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status s) { done.set_value(std::move(s)); });
  const grpc::Status status = done.get_future().get();
  if (!status.ok()) {
    std::cerr << "kvserve-cli: health: " << what << " on " << o.server << ": "
              << absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()))
              << ": " << status.error_message() << "\n";
    return 1;
  }
  const int serving = DecodeStatus(response);
  if (serving != 1) {
    std::cerr << "kvserve-cli: health: " << what << " on " << o.server << " is "
              << StatusName(serving) << "\n";
    return 1;
  }
  std::cout << what << " on " << o.server << " is SERVING\n";
  return 0;
}

}  // namespace

void AddHealthCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<HealthOptions>();
  CLI::App* cmd = app.add_subcommand(
      "health", "grpc.health.v1 check of a running server: exit 0 only when SERVING");
  cmd->add_option("--server", options->server, "HOST:PORT of the server")->required();
  AddClientConnectionFlags(*cmd, options->connection);
  cmd->add_option("--service", options->service,
                  "service to check (\"\": the whole process, i.e. liveness)")
      ->capture_default_str();
  cmd->add_option("--timeout", options->timeout_s, "deadline in seconds")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->callback([options, &exit_code] { exit_code = RunHealth(*options); });
}

}  // namespace kvserve::cli
