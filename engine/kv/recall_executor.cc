#include "engine/kv/recall_executor.h"

namespace kvserve {

uint64_t InlineRecallExecutor::Submit(std::function<void()> job) {
  job();
  return ++next_;
}

ThreadRecallExecutor::ThreadRecallExecutor() : worker_([this] { Run(); }) {}

ThreadRecallExecutor::~ThreadRecallExecutor() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

uint64_t ThreadRecallExecutor::Submit(std::function<void()> job) {
  uint64_t ticket;
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(job));
    ticket = ++submitted_;
  }
  cv_.notify_all();
  return ticket;
}

void ThreadRecallExecutor::Wait(uint64_t ticket) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return done_ >= ticket; });
}

void ThreadRecallExecutor::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, nothing left
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job();
    lock.lock();
    ++done_;
    cv_.notify_all();
  }
}

}  // namespace kvserve
