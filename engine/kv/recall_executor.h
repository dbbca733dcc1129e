#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "engine/base/mutex.h"

namespace kvserve {

// Where FreeKV's off-critical-path work (scoring, top-k, host → device recall for the next step)
// runs. The CPU backend uses a worker thread; a CUDA backend maps Submit/Wait onto a recall stream
// and events without the policy logic changing.
class RecallExecutor {
 public:
  virtual ~RecallExecutor() = default;
  // Queues `job`; jobs run one at a time in submission order (one FIFO: no two layers' recalls
  // interleave on shared buffers, research/freekv.md §10.3). Returns a ticket for Wait.
  virtual uint64_t Submit(std::function<void()> job) = 0;
  // Returns once the job with `ticket` (and every job before it) has run.
  virtual void Wait(uint64_t ticket) = 0;
};

// Runs each job at once on the caller's thread: synchronous recall (tests, `quest`).
class InlineRecallExecutor : public RecallExecutor {
 public:
  uint64_t Submit(std::function<void()> job) override;
  void Wait(uint64_t ticket) override {}

 private:
  uint64_t next_ = 0;
};

// One background thread draining a FIFO of jobs.
class ThreadRecallExecutor : public RecallExecutor {
 public:
  ThreadRecallExecutor();
  ~ThreadRecallExecutor() override;
  uint64_t Submit(std::function<void()> job) override;
  void Wait(uint64_t ticket) override;

 private:
  void Run();

  Mutex mu_;
  CondVar cv_;
  std::deque<std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
  uint64_t submitted_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t done_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread worker_;
};

}  // namespace kvserve
