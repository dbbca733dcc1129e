#pragma once

#include <string>
#include <vector>

#include "kvserve/v1/inference.grpc.pb.h"

namespace kvserve::bench {

// What one streamed Generate looked like from the client: when each token arrived.
struct StreamedRequestTiming {
  bool ok = false;
  std::string error;  // "CODE: message" when not ok
  int tokens = 0;
  double ttft_ms = 0;          // sent to the first token
  double e2e_ms = 0;           // sent to the stream's end
  std::vector<double> itl_ms;  // per token after the first: the gap to the previous chunk,
                               // spread over the tokens of its chunk
  double server_ttft_ms = 0;   // as the server timed it (final message)
  int prompt_tokens = 0;       // as the server counted them (final message's usage)
};

// Sends `request` on `stub` and reads the stream to its end.
StreamedRequestTiming RunStreamedRequest(kvserve::v1::Inference::Stub& stub,
                                         const kvserve::v1::GenerateRequest& request,
                                         double timeout_s);

}  // namespace kvserve::bench
