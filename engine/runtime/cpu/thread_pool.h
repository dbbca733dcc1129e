#pragma once

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

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  const RangeFn* job_ = nullptr;
  int64_t job_n_ = 0;
  int slices_ = 0;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
};

}  // namespace kvserve::cpu
