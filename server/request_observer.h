#pragma once

#include <string>

#include "engine/scheduler/engine_core.h"
#include "server/server_metrics.h"

namespace kvserve::server {

// Follows one request's outputs on the engine thread: observes TTFT and inter-token latency as
// tokens arrive (measured from the RPC's arrival, as vLLM measures from its front end), and on the
// last output the request's histograms and counters plus its one info log line. It runs whether or
// not the client is still listening.
class RequestObserver {
 public:
  RequestObserver(ServerMetrics& metrics, EngineClock::time_point arrival, std::string kv_policy)
      : metrics_(metrics), arrival_(arrival), kv_policy_(std::move(kv_policy)) {}

  void OnOutput(const SequenceOutput& output);

 private:
  ServerMetrics& metrics_;
  EngineClock::time_point arrival_;
  std::string kv_policy_;
  bool first_token_seen_ = false;
  EngineClock::time_point first_token_;
  EngineClock::time_point last_token_;
};

}  // namespace kvserve::server
