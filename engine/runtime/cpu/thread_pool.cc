#include "engine/runtime/cpu/thread_pool.h"

#include <algorithm>

namespace kvserve::cpu {
namespace {

std::pair<int64_t, int64_t> Slice(int64_t n, int slices, int i) {
  return {n * i / slices, n * (i + 1) / slices};
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  start_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::ParallelFor(int64_t n, const RangeFn& fn, double item_work) {
  if (n <= 0) return;
  const double total = static_cast<double>(n) * std::max(item_work, 0.0);
  const int64_t by_work = std::max<int64_t>(1, static_cast<int64_t>(total / kMinSliceWork));
  const int slices = static_cast<int>(std::min<int64_t>({n, size(), by_work}));
  if (slices == 1) {
    fn(0, n, 0);
    return;
  }
  {
    std::lock_guard lock(mu_);
    job_ = &fn;
    job_n_ = n;
    slices_ = slices;
    pending_ = slices - 1;
    ++generation_;
  }
  start_cv_.notify_all();
  const auto [begin, end] = Slice(n, slices, 0);
  fn(begin, end, 0);
  std::unique_lock lock(mu_);
  done_cv_.wait(lock, [this] { return pending_ == 0; });
  job_ = nullptr;
}

void ThreadPool::WorkerLoop(int index) {
  uint64_t seen = 0;
  for (;;) {
    std::unique_lock lock(mu_);
    start_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
    if (stop_) return;
    seen = generation_;
    if (index >= slices_) continue;  // fewer slices than workers this time
    const RangeFn* fn = job_;
    const auto [begin, end] = Slice(job_n_, slices_, index);
    lock.unlock();
    (*fn)(begin, end, index);
    lock.lock();
    if (--pending_ == 0) done_cv_.notify_one();
  }
}

}  // namespace kvserve::cpu
