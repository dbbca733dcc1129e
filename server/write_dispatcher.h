#pragma once

#include <functional>

#include "engine/kv/recall_executor.h"

namespace kvserve::server {

// One thread that starts the streams' gRPC writes for the engine thread: StartWrite serializes
// the message and often sends it inline, work the engine thread should not do between steps.
// Jobs run in submission order on the engine's FIFO worker (the one FreeKV recalls run on); the
// destructor runs what is queued, then joins.
class WriteDispatcher {
 public:
  void Post(std::function<void()> job) { worker_.Submit(std::move(job)); }

 private:
  ThreadRecallExecutor worker_;
};

}  // namespace kvserve::server
