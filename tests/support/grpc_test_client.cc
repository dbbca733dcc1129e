#include "tests/support/grpc_test_client.h"

#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace kvserve::testing {

namespace pb = kvserve::v1;

StreamResult GenerateAll(pb::Inference::Stub& stub, const pb::GenerateRequest& request,
                         std::chrono::milliseconds timeout) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  return ReadStream(context, stub, request);
}

StreamResult ReadStream(grpc::ClientContext& context, pb::Inference::Stub& stub,
                        const pb::GenerateRequest& request) {
  StreamResult result;
  auto reader = stub.Generate(&context, request);
  pb::GenerateResponse response;
  while (reader->Read(&response)) {
    ++result.messages;
    result.tokens.insert(result.tokens.end(), response.token_ids().begin(),
                         response.token_ids().end());
    result.text += response.text();
    if (response.finish_reason() != pb::FINISH_REASON_UNSPECIFIED) result.final = response;
  }
  result.status = reader->Finish();
  return result;
}

BackgroundGenerate::BackgroundGenerate(pb::Inference::Stub& stub, pb::GenerateRequest request) {
  context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  thread_ = std::thread([this, &stub, request = std::move(request)] {
    result_ = ReadStream(context_, stub, request);
  });
}

BackgroundGenerate::~BackgroundGenerate() {
  if (!thread_.joinable()) return;
  context_.TryCancel();
  thread_.join();
}

const StreamResult& BackgroundGenerate::Wait() {
  if (thread_.joinable()) thread_.join();
  return result_;
}

pb::GenerateRequest GreedyIdsRequest(const std::vector<int32_t>& prompt, int max_tokens) {
  pb::GenerateRequest r;
  r.mutable_token_ids()->mutable_ids()->Add(prompt.begin(), prompt.end());
  r.mutable_sampling()->set_max_new_tokens(static_cast<uint32_t>(max_tokens));
  r.mutable_sampling()->set_temperature(0.0f);
  return r;
}

pb::GenerateRequest GreedyTextRequest(const std::string& text, int max_tokens) {
  pb::GenerateRequest r;
  r.set_text(text);
  r.mutable_sampling()->set_max_new_tokens(static_cast<uint32_t>(max_tokens));
  r.mutable_sampling()->set_temperature(0.0f);
  return r;
}

absl::StatusOr<pb::ServerStatus> GetServerStatus(pb::Inference::Stub& stub) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  pb::ServerStatus status;
  if (grpc::Status s = stub.GetServerStatus(&context, {}, &status); !s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  }
  return status;
}

pb::KvTierUsage Tier(const pb::ServerStatus& status, const std::string& name) {
  for (const pb::KvTierUsage& tier : status.kv_tiers()) {
    if (tier.tier() == name) return tier;
  }
  return {};
}

uint64_t DevicePagesUsed(const pb::ServerStatus& status) {
  return Tier(status, "device").pages_used();
}

absl::StatusOr<pb::ServerStatus> WaitForStatus(
    pb::Inference::Stub& stub, const std::function<bool(const pb::ServerStatus&)>& done,
    std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto status = GetServerStatus(stub);
    if (!status.ok() || done(*status) || std::chrono::steady_clock::now() >= deadline) {
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

absl::StatusOr<pb::ServerStatus> WaitUntilIdle(pb::Inference::Stub& stub) {
  return WaitForStatus(
      stub, [](const pb::ServerStatus& s) { return s.running() == 0 && s.waiting() == 0; });
}

std::string Describe(const grpc::Status& status) {
  return absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
                      ": ", status.error_message());
}

}  // namespace kvserve::testing
