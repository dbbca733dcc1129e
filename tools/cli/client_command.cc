// `kvserve-cli client`: the `generate` request flags, sent to a running server over gRPC.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <iostream>

#include "absl/status/status.h"
#include "kvserve/v1/inference.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tools/cli/client_request.h"
#include "tools/cli/commands.h"
#include "tools/cli/model_options.h"
#include "tools/cli/proto_json.h"
#include "tools/common/client_connection.h"

namespace kvserve::cli {
namespace {

namespace pb = kvserve::v1;

struct ClientOptions {
  std::string server;
  ClientConnectionOptions connection;  // TLS and API key
  RequestOptions request;
  std::string request_id;
  double timeout_s = 0;  // 0: no deadline
  bool non_streaming = false;
  std::string format = "text";
  bool status = false;
  bool model_info = false;
};

// Prints "kvserve-cli: error: CODE: message" (CODE as gRPC names it) and returns exit code 1.
int FailRpc(const grpc::Status& status) {
  std::cerr << "kvserve-cli: error: "
            << absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())) << ": "
            << status.error_message() << "\n";
  return 1;
}

void SetDeadline(grpc::ClientContext& context, double timeout_s) {
  if (timeout_s <= 0) return;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::microseconds(static_cast<int64_t>(timeout_s * 1e6)));
}

std::string FinishReasonName(pb::FinishReason reason) {
  switch (reason) {
    case pb::FINISH_REASON_EOS:
      return "eos";
    case pb::FINISH_REASON_MAX_TOKENS:
      return "max_tokens";
    case pb::FINISH_REASON_STOP_SEQUENCE:
      return "stop";
    case pb::FINISH_REASON_CANCELLED:
      return "cancelled";
    case pb::FINISH_REASON_DEADLINE:
      return "deadline";
    case pb::FINISH_REASON_ERROR:
      return "error";
    default:
      return "unspecified";
  }
}

// The `generate --format json` object, from the streamed tokens and the final message.
nlohmann::json ResultJson(const pb::ModelInfo& info, const std::vector<int32_t>& tokens,
                          const std::string& text, const pb::GenerateResponse& last) {
  nlohmann::json kv = ProtoToJson(last.kv());
  kv.erase("preemptions");  // a scheduling fact, reported beside the policy's stats
  nlohmann::json out = {
      {"model", info.model()},
      {"backend", info.backend()},
      {"request_id", last.request_id()},
      {"token_ids", tokens},
      {"text", text},
      {"prompt_tokens", last.usage().prompt_tokens()},
      {"completion_tokens", last.usage().completion_tokens()},
      {"finish_reason", FinishReasonName(last.finish_reason())},
      {"queue_ms", last.timing().queue_ms()},
      {"prefill_ms", last.timing().prefill_ms()},
      {"ttft_ms", last.timing().ttft_ms()},
      {"decode_ms", last.timing().decode_ms()},
      {"decode_tokens_per_s", last.timing().decode_tokens_per_s()},
      {"e2e_ms", last.timing().e2e_ms()},
      {"preemptions", last.kv().preemptions()},
      {"kv", kv},
  };
  if (!last.matched_stop().empty()) out["matched_stop"] = last.matched_stop();
  if (!last.error().empty()) out["error"] = last.error();
  return out;
}

int RunGenerate(pb::Inference::Stub& stub, const ClientOptions& o) {
  auto request = BuildGenerateRequest(o.request);
  if (!request.ok()) return Fail(request.status());
  request->set_request_id(o.request_id);
  request->set_non_streaming(o.non_streaming);
  const bool json = o.format == "json";

  pb::ModelInfo info;  // names the model in the JSON output
  if (json) {
    grpc::ClientContext context;
    SetDeadline(context, o.timeout_s);
    if (grpc::Status s = stub.GetModelInfo(&context, {}, &info); !s.ok()) return FailRpc(s);
  }

  grpc::ClientContext context;
  SetDeadline(context, o.timeout_s);
  std::unique_ptr<grpc::ClientReader<pb::GenerateResponse>> reader =
      stub.Generate(&context, *request);
  std::vector<int32_t> tokens;
  std::string text;
  pb::GenerateResponse message, last;
  while (reader->Read(&message)) {
    tokens.insert(tokens.end(), message.token_ids().begin(), message.token_ids().end());
    text += message.text();
    if (!json) std::cout << message.text() << std::flush;
    if (message.finish_reason() != pb::FINISH_REASON_UNSPECIFIED) last = message;
  }
  if (grpc::Status s = reader->Finish(); !s.ok()) {
    if (!json && !text.empty()) std::cout << "\n";
    return FailRpc(s);
  }
  if (last.finish_reason() == pb::FINISH_REASON_ERROR) {
    if (!json && !text.empty()) std::cout << "\n";
    return Fail(absl::InternalError(last.error()));
  }
  if (json) {
    std::cout << ResultJson(info, tokens, text, last).dump() << "\n";
  } else {
    std::cout << "\n";
  }
  return 0;
}

int RunClient(const ClientOptions& o) {
  const auto channel = OpenClientChannel(o.server, o.connection);
  if (!channel.ok()) {
    std::cerr << "kvserve-cli: error: " << channel.status().message() << "\n";
    return 1;
  }
  const auto stub = pb::Inference::NewStub(*channel);
  if (o.status || o.model_info) {
    grpc::ClientContext context;
    SetDeadline(context, o.timeout_s);
    grpc::Status s;
    nlohmann::json out;
    if (o.status) {
      pb::ServerStatus status;
      s = stub->GetServerStatus(&context, {}, &status);
      out = ProtoToJson(status);
    } else {
      pb::ModelInfo info;
      s = stub->GetModelInfo(&context, {}, &info);
      out = ProtoToJson(info);
    }
    if (!s.ok()) return FailRpc(s);
    std::cout << out.dump() << "\n";
    return 0;
  }
  return RunGenerate(*stub, o);
}

}  // namespace

void AddClientCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<ClientOptions>();
  CLI::App* cmd = app.add_subcommand("client", "send a request to a running kvserve server");
  cmd->add_option("--server", options->server, "HOST:PORT of the server")->required();
  AddClientConnectionFlags(*cmd, options->connection);
  AddRequestOptions(*cmd, options->request);
  cmd->add_option("--request-id", options->request_id, "request id (the server assigns one)");
  cmd->add_option("--timeout", options->timeout_s, "deadline in seconds (0 = none)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--non-streaming", options->non_streaming,
                "ask for one final message instead of a token stream");
  cmd->add_option("--format", options->format, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  auto* status = cmd->add_flag("--status", options->status, "print the server status as JSON");
  auto* info = cmd->add_flag("--model-info", options->model_info, "print the model info as JSON");
  status->excludes(info);
  cmd->callback([options, &exit_code] { exit_code = RunClient(*options); });
}

}  // namespace kvserve::cli
