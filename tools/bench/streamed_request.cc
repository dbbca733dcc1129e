#include "tools/bench/streamed_request.h"

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace kvserve::bench {

StreamedRequestTiming RunStreamedRequest(kvserve::v1::Inference::Stub& stub,
                                         const kvserve::v1::GenerateRequest& request,
                                         double timeout_s) {
  using Clock = std::chrono::steady_clock;
  const auto ms_since = [](Clock::time_point from) {
    return std::chrono::duration<double, std::milli>(Clock::now() - from).count();
  };
  StreamedRequestTiming timing;
  grpc::ClientContext context;
  if (timeout_s > 0) {
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::microseconds(static_cast<int64_t>(timeout_s * 1e6)));
  }
  const auto start = Clock::now();
  auto reader = stub.Generate(&context, request);
  kvserve::v1::GenerateResponse response;
  double previous_ms = 0;
  while (reader->Read(&response)) {
    if (response.has_usage())
      timing.prompt_tokens = static_cast<int>(response.usage().prompt_tokens());
    const int n = response.token_ids_size();
    if (n == 0) continue;
    const double now_ms = ms_since(start);
    if (timing.tokens == 0) {
      timing.ttft_ms = now_ms;
      // The first chunk's further tokens arrived together with the first.
      for (int i = 1; i < n; ++i) timing.itl_ms.push_back(0);
    } else {
      for (int i = 0; i < n; ++i) timing.itl_ms.push_back((now_ms - previous_ms) / n);
    }
    previous_ms = now_ms;
    timing.tokens += n;
    if (response.has_timing()) timing.server_ttft_ms = response.timing().ttft_ms();
  }
  const grpc::Status status = reader->Finish();
  timing.e2e_ms = ms_since(start);
  timing.ok = status.ok();
  if (!status.ok()) {
    timing.error =
        absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
                     ": ", status.error_message());
  }
  return timing;
}

}  // namespace kvserve::bench
