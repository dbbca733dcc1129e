#include "server/response_queue.h"

#include <utility>

#include "server/response_conversion.h"

namespace kvserve::server {

void ResponseQueue::Push(v1::GenerateResponse message) {
  if (messages_.size() < capacity_) {
    messages_.push_back(std::move(message));
    return;
  }
  MergeResponse(std::move(message), &messages_.back());
  ++merged_;
}

v1::GenerateResponse ResponseQueue::PopAll() {
  v1::GenerateResponse all = Pop();
  while (!messages_.empty()) {
    MergeResponse(Pop(), &all);
    ++merged_;
  }
  return all;
}

v1::GenerateResponse ResponseQueue::Pop() {
  v1::GenerateResponse front = std::move(messages_.front());
  messages_.pop_front();
  return front;
}

}  // namespace kvserve::server
