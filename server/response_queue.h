#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

#include "kvserve/v1/inference.pb.h"

namespace kvserve::server {

// A stream's messages waiting for the client, at most `capacity` of them: once full, a new message
// merges into the last queued one (tokens, text and logprobs appended, counts updated) instead of
// queueing. A slow reader thus never blocks the engine thread that pushes, and the queue's memory
// stays bounded by the request's own output. Not thread-safe: the stream's mutex guards it.
class ResponseQueue {
 public:
  explicit ResponseQueue(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

  void Push(v1::GenerateResponse message);
  v1::GenerateResponse Pop();  // the oldest; the queue must not be empty
  // Everything queued, merged into one message in order (the queue must not be empty): what a
  // stream sends when its previous write completes, so a reader slower than the engine gets
  // fewer, larger messages and pays gRPC's per-message cost once per write, not once per token.
  v1::GenerateResponse PopAll();

  bool empty() const { return messages_.empty(); }
  size_t size() const { return messages_.size(); }
  const v1::GenerateResponse& back() const { return messages_.back(); }
  // Messages folded into an earlier one because the queue was full.
  uint64_t merged() const { return merged_; }

 private:
  size_t capacity_;
  std::deque<v1::GenerateResponse> messages_;
  uint64_t merged_ = 0;
};

}  // namespace kvserve::server
