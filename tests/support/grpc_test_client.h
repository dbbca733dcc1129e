#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "kvserve/v1/inference.grpc.pb.h"

namespace kvserve::testing {

// One Generate stream read to its end.
struct StreamResult {
  grpc::Status status;
  std::vector<int32_t> tokens;  // every chunk's token ids, in order
  std::string text;             // every chunk's text, concatenated
  int messages = 0;
  std::optional<kvserve::v1::GenerateResponse> final;  // the message with a finish reason
};

StreamResult GenerateAll(kvserve::v1::Inference::Stub& stub,
                         const kvserve::v1::GenerateRequest& request,
                         std::chrono::milliseconds timeout = std::chrono::seconds(120));
// The same with the caller's context (deadline, cancellation).
StreamResult ReadStream(grpc::ClientContext& context, kvserve::v1::Inference::Stub& stub,
                        const kvserve::v1::GenerateRequest& request);

// A Generate stream read to its end on a thread of its own. Destroying it cancels the call if it
// is still going and joins, so a test that fails half way never leaves a thread behind.
class BackgroundGenerate {
 public:
  BackgroundGenerate(kvserve::v1::Inference::Stub& stub, kvserve::v1::GenerateRequest request);
  ~BackgroundGenerate();
  BackgroundGenerate(const BackgroundGenerate&) = delete;
  BackgroundGenerate& operator=(const BackgroundGenerate&) = delete;

  // Waits for the stream's end.
  const StreamResult& Wait();

 private:
  grpc::ClientContext context_;
  StreamResult result_;
  std::thread thread_;
};

// Greedy requests (temperature 0) of `max_tokens` from token ids or text.
kvserve::v1::GenerateRequest GreedyIdsRequest(const std::vector<int32_t>& prompt, int max_tokens);
kvserve::v1::GenerateRequest GreedyTextRequest(const std::string& text, int max_tokens);

absl::StatusOr<kvserve::v1::ServerStatus> GetServerStatus(kvserve::v1::Inference::Stub& stub);
// The KV tier named `name` ("device", "host"); empty when the status has none.
kvserve::v1::KvTierUsage Tier(const kvserve::v1::ServerStatus& status, const std::string& name);
// Pages in use in the device KV tier.
uint64_t DevicePagesUsed(const kvserve::v1::ServerStatus& status);
// Polls GetServerStatus until `done` holds for it (every 10 ms, at most `timeout`); the last
// status seen, or the error that ended the wait.
absl::StatusOr<kvserve::v1::ServerStatus> WaitForStatus(
    kvserve::v1::Inference::Stub& stub,
    const std::function<bool(const kvserve::v1::ServerStatus&)>& done,
    std::chrono::seconds timeout = std::chrono::seconds(60));
// Until nothing runs and nothing waits.
absl::StatusOr<kvserve::v1::ServerStatus> WaitUntilIdle(kvserve::v1::Inference::Stub& stub);

// "CODE: message" for assertion output.
std::string Describe(const grpc::Status& status);

}  // namespace kvserve::testing
