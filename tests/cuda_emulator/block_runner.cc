#include "block_runner.h"

#include <sys/mman.h>

#include <algorithm>
#include <boost/context/fiber.hpp>
#include <boost/context/stack_context.hpp>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

#include "cuda_emulator/device_builtins.h"

namespace kvserve::cuda_emulator {
namespace {

namespace ctx = boost::context;

constexpr int kWarpSize = 32;

// Fiber stacks, reused across blocks and launches: a launch of many blocks would otherwise map
// and unmap a stack per thread per block. A guard page below each stack turns an overflow into a
// crash instead of silent corruption.
class StackPool {
 public:
  static constexpr size_t kStackBytes = 256 * 1024;
  static constexpr size_t kGuardBytes = 4096;

  ctx::stack_context Take() {
    void* base = nullptr;
    if (free_.empty()) {
      base = mmap(nullptr, kStackBytes + kGuardBytes, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (base == MAP_FAILED || mprotect(base, kGuardBytes, PROT_NONE) != 0) {
        std::fputs("cuda emulator: cannot map a fiber stack\n", stderr);
        std::abort();
      }
    } else {
      base = free_.back();
      free_.pop_back();
    }
    ctx::stack_context stack;
    stack.size = kStackBytes;
    stack.sp = static_cast<char*>(base) + kGuardBytes + kStackBytes;
    return stack;
  }

  void Give(ctx::stack_context& stack) {
    free_.push_back(static_cast<char*>(stack.sp) - kStackBytes - kGuardBytes);
  }

 private:
  std::vector<void*> free_;
};

StackPool& Stacks() {
  static StackPool pool;
  return pool;
}

// Boost.Context's StackAllocator over the pool.
struct PooledStack {
  ctx::stack_context allocate() { return Stacks().Take(); }
  void deallocate(ctx::stack_context& stack) noexcept { Stacks().Give(stack); }
};

// Thrown by Fail inside a thread's fiber and caught at the bottom of that fiber.
struct KernelFault {
  const char* what;
};

enum class ThreadState { kRunnable, kWaiting, kDone };

struct EmulatedThread {
  uint3 index{};
  int lane = 0;
  int warp = 0;
  ThreadState state = ThreadState::kRunnable;
  Collective waiting_at = Collective::kNone;
  std::source_location site;     // of the shuffle or wmma call it waits at
  uint64_t warp_operations = 0;  // shuffles and wmma calls so far: lanes must agree
  int shuffle_parity = 0;
  ctx::fiber fiber;      // the thread, while it is suspended
  ctx::fiber scheduler;  // the scheduler, while the thread runs
};

struct Warp {
  int lanes = 0;
  uint64_t shuffle_slots[2][kWarpSize] = {};  // double-buffered: one shuffle's reads overlap the
                                              // next one's writes
  float matrix_scratch[512] = {};
};

struct Block {
  unsigned char* dynamic_shared = nullptr;
  std::vector<EmulatedThread> threads;
  std::vector<Warp> warps;
  std::string failure;
};

thread_local Block* current_block = nullptr;
thread_local EmulatedThread* current_thread = nullptr;

EmulatedThread& ThisThread() {
  if (current_thread == nullptr) {
    std::fputs("cuda emulator: device code called outside a kernel\n", stderr);
    std::abort();
  }
  return *current_thread;
}

bool IsWarpCollective(Collective c) {
  return c == Collective::kSyncwarp || c == Collective::kShuffle || c == Collective::kWmma;
}

bool SameSite(const std::source_location& a, const std::source_location& b) {
  return a.line() == b.line() && a.column() == b.column() &&
         std::string_view(a.file_name()) == b.file_name();
}

std::string Describe(const EmulatedThread& t) {
  std::ostringstream out;
  out << (t.waiting_at == Collective::kShuffle ? "a shuffle"
          : t.waiting_at == Collective::kWmma  ? "a wmma call"
                                               : "__syncwarp");
  if (t.waiting_at != Collective::kSyncwarp) {
    out << " at " << t.site.file_name() << ":" << t.site.line() << " (warp operation "
        << t.warp_operations << ")";
  }
  return out.str();
}

void Resume(EmulatedThread& t) {
  current_thread = &t;
  threadIdx = t.index;
  t.fiber = std::move(t.fiber).resume();
  current_thread = nullptr;
}

// Releases every warp whose live lanes all wait at warp collectives; records a failure when they
// disagree on a shuffle or wmma operation, or when such an operation misses exited lanes.
bool ReleaseWarps(Block& block) {
  bool released = false;
  for (size_t w = 0; w < block.warps.size(); ++w) {
    const size_t first = w * kWarpSize;
    const size_t end = first + block.warps[w].lanes;
    EmulatedThread* leader = nullptr;
    bool all_waiting = true;
    bool any_exited = false;
    bool data_exchange = false;
    for (size_t i = first; i < end; ++i) {
      const EmulatedThread& t = block.threads[i];
      if (t.state == ThreadState::kDone) {
        any_exited = true;
        continue;
      }
      if (t.state != ThreadState::kWaiting || !IsWarpCollective(t.waiting_at)) {
        all_waiting = false;
        break;
      }
      if (leader == nullptr) leader = &block.threads[i];
      if (t.waiting_at != Collective::kSyncwarp) data_exchange = true;
    }
    if (!all_waiting || leader == nullptr) continue;
    if (data_exchange) {
      for (size_t i = first; i < end; ++i) {
        const EmulatedThread& t = block.threads[i];
        if (t.state == ThreadState::kDone) continue;
        if (t.waiting_at != leader->waiting_at || !SameSite(t.site, leader->site) ||
            t.warp_operations != leader->warp_operations) {
          block.failure = "warp " + std::to_string(w) + ": lane " + std::to_string(t.lane) +
                          " is at " + Describe(t) + ", lane " + std::to_string(leader->lane) +
                          " at " + Describe(*leader) + " (divergent code)";
          return false;
        }
      }
      if (any_exited) {
        block.failure = "warp " + std::to_string(w) +
                        ": a shuffle or wmma operation after some of its lanes exited";
        return false;
      }
    }
    for (size_t i = first; i < end; ++i) {
      EmulatedThread& t = block.threads[i];
      if (t.state == ThreadState::kWaiting) t.state = ThreadState::kRunnable;
    }
    released = true;
  }
  return released;
}

// Releases __syncthreads once every live thread waits there (exited threads do not count).
bool ReleaseBlockBarrier(Block& block) {
  bool any_waiting = false;
  for (const EmulatedThread& t : block.threads) {
    if (t.state == ThreadState::kDone) continue;
    if (t.state != ThreadState::kWaiting || t.waiting_at != Collective::kSyncthreads) return false;
    any_waiting = true;
  }
  if (!any_waiting) return false;
  for (EmulatedThread& t : block.threads) {
    if (t.state == ThreadState::kWaiting) t.state = ThreadState::kRunnable;
  }
  return true;
}

std::string DescribeDeadlock(const Block& block) {
  int at_syncthreads = 0;
  int at_warp = 0;
  int done = 0;
  for (const EmulatedThread& t : block.threads) {
    if (t.state == ThreadState::kDone) {
      ++done;
    } else if (t.waiting_at == Collective::kSyncthreads) {
      ++at_syncthreads;
    } else {
      ++at_warp;
    }
  }
  std::ostringstream out;
  out << "deadlock: " << at_syncthreads << " threads wait at __syncthreads, " << at_warp
      << " at warp collectives, " << done << " exited (a barrier in divergent code?)";
  return out.str();
}

}  // namespace

int LaneId() { return ThisThread().lane; }

void Arrive(Collective collective, const std::source_location& site) {
  EmulatedThread& t = ThisThread();
  t.site = site;
  if (collective == Collective::kShuffle || collective == Collective::kWmma) ++t.warp_operations;
  t.state = ThreadState::kWaiting;
  t.waiting_at = collective;
  t.scheduler = std::move(t.scheduler).resume();
  t.waiting_at = Collective::kNone;
}

uint64_t ShuffleXor(uint64_t bits, int lane_mask, int width, const std::source_location& site) {
  EmulatedThread& t = ThisThread();
  if (width <= 0 || width > kWarpSize || (width & (width - 1)) != 0) {
    Fail("__shfl_xor_sync: width must be a power of two up to 32");
  }
  Warp& warp = current_block->warps[t.warp];
  const int parity = t.shuffle_parity;
  t.shuffle_parity ^= 1;
  warp.shuffle_slots[parity][t.lane] = bits;
  Arrive(Collective::kShuffle, site);
  const int source = t.lane ^ lane_mask;
  // A later group's lane is out of reach: the caller keeps its own value, as CUDA specifies.
  if (source / width > t.lane / width) return bits;
  if (source >= warp.lanes) Fail("__shfl_xor_sync: source lane outside a partial warp");
  return warp.shuffle_slots[parity][source];
}

float* WarpMatrixScratch() { return current_block->warps[ThisThread().warp].matrix_scratch; }

unsigned char* DynamicSharedMemory() { return current_block->dynamic_shared; }

void Fail(const char* what) {
  if (current_thread == nullptr) {
    std::fprintf(stderr, "cuda emulator: %s (outside a kernel)\n", what);
    std::abort();
  }
  throw KernelFault{what};
}

std::string RunBlock(const dim3& grid, const dim3& block_dim, const uint3& block_index,
                     unsigned char* dynamic_shared, ThreadOrder order,
                     const std::function<void()>& thread) {
  const int count = static_cast<int>(block_dim.x * block_dim.y * block_dim.z);
  Block block;
  block.dynamic_shared = dynamic_shared;
  block.threads.resize(count);
  block.warps.resize((count + kWarpSize - 1) / kWarpSize);
  for (size_t w = 0; w < block.warps.size(); ++w) {
    block.warps[w].lanes = std::min(kWarpSize, count - static_cast<int>(w) * kWarpSize);
  }
  current_block = &block;
  blockIdx = block_index;
  blockDim = block_dim;
  gridDim = grid;
  for (int i = 0; i < count; ++i) {
    EmulatedThread& t = block.threads[i];
    t.index =
        uint3{i % block_dim.x, (i / block_dim.x) % block_dim.y, i / (block_dim.x * block_dim.y)};
    t.lane = i % kWarpSize;
    t.warp = i / kWarpSize;
    t.fiber = ctx::fiber(std::allocator_arg, PooledStack(),
                         [&t, &block, &thread](ctx::fiber&& scheduler) {
                           t.scheduler = std::move(scheduler);
                           try {
                             thread();
                           } catch (const KernelFault& fault) {
                             if (block.failure.empty()) block.failure = fault.what;
                           }
                           t.state = ThreadState::kDone;
                           return std::move(t.scheduler);
                         });
  }

  while (block.failure.empty()) {
    for (int n = 0; n < count && block.failure.empty(); ++n) {
      EmulatedThread& t = block.threads[order == ThreadOrder::kForward ? n : count - 1 - n];
      if (t.state == ThreadState::kRunnable) Resume(t);
    }
    if (!block.failure.empty()) break;
    bool all_done = true;
    for (const EmulatedThread& t : block.threads) all_done &= t.state == ThreadState::kDone;
    if (all_done) break;
    const bool warps_released = ReleaseWarps(block);
    if (!block.failure.empty()) break;
    if (!warps_released && !ReleaseBlockBarrier(block)) block.failure = DescribeDeadlock(block);
  }
  // Threads still suspended (after a failure) unwind here, when their fibers are destroyed.
  block.threads.clear();
  current_block = nullptr;
  return block.failure;
}

}  // namespace kvserve::cuda_emulator

uint3 threadIdx{};
uint3 blockIdx{};
dim3 blockDim;
dim3 gridDim;
