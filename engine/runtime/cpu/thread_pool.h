#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kvserve::cpu {

// Fixed workers that split index ranges; the caller works too. The CPU backend's only source of
// parallelism (OpenBLAS runs single-threaded inside each slice), so no two pools spin on the cores.
class ThreadPool {
 public:
  // `threads` <= 0: one per hardware thread.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end, worker) on `size()` contiguous slices of [0, n) (fewer when n is small),
  // `worker` in [0, size()), and returns when all are done. Each item costs about `item_work`
  // (any unit of kMinSliceWork's): a slice gets at least kMinSliceWork of it, so small jobs run
  // on the caller alone rather than paying a worker's wake-up (tens of µs) for µs of work.
  using RangeFn = std::function<void(int64_t begin, int64_t end, int worker)>;
  void ParallelFor(int64_t n, const RangeFn& fn, double item_work = kMinSliceWork);

  // Work per slice below which waking another worker costs more than it saves: ~64K flops.
  static constexpr double kMinSliceWork = 65536.0;

 private:
  void WorkerLoop(int index);

  // A decode step hands out hundreds of jobs tens of µs apart: a worker (and the caller, for the
  // job's end) spins this long before it sleeps, so back-to-back jobs skip the futex wake-up that
  // made two threads decode slower than one. Idle, it sleeps after this and costs nothing.
  static constexpr std::chrono::microseconds kSpin{200};

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  // The job: written by the caller before it publishes `generation_`, read by the workers after
  // they see it. Every worker acknowledges each job (`pending_`), so none reads a job's fields
  // after the caller has moved on to the next.
  const RangeFn* job_ = nullptr;
  int64_t job_n_ = 0;
  int slices_ = 0;
  std::atomic<uint64_t> generation_ = 0;
  std::atomic<int> pending_ = 0;
  std::atomic<bool> stop_ = false;
};

}  // namespace kvserve::cpu
