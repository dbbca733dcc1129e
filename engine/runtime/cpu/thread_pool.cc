#include "engine/runtime/cpu/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace kvserve::cpu {
namespace {

std::pair<int64_t, int64_t> Slice(int64_t n, int slices, int i) {
  return {n * i / slices, n * (i + 1) / slices};
}

// One spin-wait iteration: tells the core (and its hyperthread sibling) that this is a spin.
inline void Relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

// Spins until `done()` or `limit` has passed; true if done.
template <typename Done>
bool SpinUntil(const Done& done, std::chrono::microseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (int i = 0;; ++i) {
    if (done()) return true;
    Relax();
    if (i % 64 == 63 && std::chrono::steady_clock::now() >= deadline) return done();
  }
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mu_);
    stop_.store(true, std::memory_order_release);
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
  job_ = &fn;
  job_n_ = n;
  slices_ = slices;
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  {
    // Under the lock, so a worker about to sleep sees either the old generation (and is woken)
    // or the new one (and does not sleep).
    std::lock_guard lock(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_cv_.notify_all();
  const auto [begin, end] = Slice(n, slices, 0);
  fn(begin, end, 0);
  auto all_done = [this] { return pending_.load(std::memory_order_acquire) == 0; };
  if (!SpinUntil(all_done, kSpin)) {
    std::unique_lock lock(mu_);
    done_cv_.wait(lock, all_done);
  }
  job_ = nullptr;
}

void ThreadPool::WorkerLoop(int index) {
  uint64_t seen = 0;
  for (;;) {
    auto started = [&] {
      return stop_.load(std::memory_order_acquire) ||
             generation_.load(std::memory_order_acquire) != seen;
    };
    if (!SpinUntil(started, kSpin)) {
      std::unique_lock lock(mu_);
      start_cv_.wait(lock, started);
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = generation_.load(std::memory_order_acquire);
    if (index < slices_) {  // fewer slices than workers this time
      const auto [begin, end] = Slice(job_n_, slices_, index);
      (*job_)(begin, end, index);
    }
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard lock(mu_);  // the caller checks pending_ under it before it sleeps
      done_cv_.notify_one();
    }
  }
}

}  // namespace kvserve::cpu
