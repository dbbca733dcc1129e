#include "engine/kv/recall_executor.h"

namespace kvserve {

uint64_t InlineRecallExecutor::Submit(std::function<void()> job) {
  job();
  return ++next_;
}

ThreadRecallExecutor::ThreadRecallExecutor() : worker_([this] { Run(); }) {}

ThreadRecallExecutor::~ThreadRecallExecutor() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    cv_.SignalAll();
  }
  worker_.join();
}

uint64_t ThreadRecallExecutor::Submit(std::function<void()> job) {
  uint64_t ticket;
  MutexLock lock(&mu_);
  jobs_.push_back(std::move(job));
  ticket = ++submitted_;
  cv_.SignalAll();
  return ticket;
}

void ThreadRecallExecutor::Wait(uint64_t ticket) {
  MutexLock lock(&mu_);
  while (done_ < ticket) cv_.Wait(&mu_);
}

void ThreadRecallExecutor::Run() {
  mu_.Lock();
  for (;;) {
    while (!stop_ && jobs_.empty()) cv_.Wait(&mu_);
    if (jobs_.empty()) break;  // stopping, nothing left
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    mu_.Unlock();
    job();
    mu_.Lock();
    ++done_;
    cv_.SignalAll();
  }
  mu_.Unlock();
}

}  // namespace kvserve
