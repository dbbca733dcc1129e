#include "engine/runtime/cpu/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace kvserve::cpu {
namespace {

TEST(ThreadPoolTest, EveryIndexRunsExactlyOnceInContiguousSlices) {
  for (int threads : {1, 2, 5}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 3, 4, 1000}) {
      std::vector<std::atomic<int>> hits(n);
      std::atomic<int> slices = 0;
      pool.ParallelFor(n, [&](int64_t begin, int64_t end, int worker) {
        EXPECT_LT(begin, end);
        EXPECT_GE(worker, 0);
        EXPECT_LT(worker, pool.size());
        ++slices;
        for (int64_t i = begin; i < end; ++i) ++hits[i];
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i], 1) << "n=" << n << " i=" << i;
      EXPECT_EQ(slices, std::min<int64_t>(n, threads));
    }
  }
}

TEST(ThreadPoolTest, ManyBackToBackJobs) {
  ThreadPool pool(3);
  std::atomic<int64_t> total = 0;
  for (int round = 0; round < 2000; ++round) {
    pool.ParallelFor(7, [&](int64_t begin, int64_t end, int) { total += end - begin; });
  }
  EXPECT_EQ(total, 2000 * 7);
}

// Workers spin a while after a job, then sleep: jobs that come after a pause (workers asleep),
// mixed with back-to-back ones (workers spinning) and with jobs of fewer slices than workers,
// each run every index once.
TEST(ThreadPoolTest, JobsAfterIdlePausesWakeTheSleepingWorkers) {
  ThreadPool pool(4);
  int64_t expected = 0;
  std::atomic<int64_t> total = 0;
  for (int round = 0; round < 40; ++round) {
    if (round % 4 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    const int64_t n = round % 3 == 0 ? 2 : 100;
    pool.ParallelFor(n, [&](int64_t begin, int64_t end, int) { total += end - begin; });
    expected += n;
    ASSERT_EQ(total, expected) << "round " << round;
  }
}

}  // namespace
}  // namespace kvserve::cpu
