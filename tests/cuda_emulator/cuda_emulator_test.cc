// The CPU emulator of CUDA against what CUDA specifies: it must run correct kernels correctly and
// make the usual kernel bugs fail (a missing barrier, a barrier in divergent code, a shuffle
// after lanes exited, a wmma operand misaligned, a read past a buffer's end, a CUB call outside
// its contract, a stream reading another's results without waiting for its event).
#include <gtest/gtest.h>

#include <mma.h>
#include <functional>

#include <cstdlib>
#include <cub/block/block_reduce.cuh>
#include <cub/device/device_segmented_radix_sort.cuh>
#include <numeric>
#include <vector>

#include "cuda_runtime.h"

namespace {

// Plain launches of the kernels below, as kernels/device/launch.cuh does.
template <typename... Params, typename... Args>
cudaError_t Launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes,
                   Args... args) {
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  return cudaLaunchKernelEx(&config, kernel, args...);
}

template <typename T>
T* DeviceCopy(const std::vector<T>& host) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, host.size() * sizeof(T)), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
            cudaSuccess);
  return static_cast<T*>(p);
}

template <typename T>
std::vector<T> HostCopy(const T* device, size_t count) {
  std::vector<T> host(count);
  EXPECT_EQ(cudaMemcpy(host.data(), device, count * sizeof(T), cudaMemcpyDeviceToHost),
            cudaSuccess);
  return host;
}

// Each block reverses its 64 values through shared memory; `barrier` says whether the block
// waits between writing and reading.
__global__ void ReverseKernel(const int* in, int* out, bool barrier) {
  __shared__ int tile[64];
  const int base = blockIdx.x * 64;
  tile[threadIdx.x] = in[base + threadIdx.x];
  if (barrier) __syncthreads();
  out[base + threadIdx.x] = tile[63 - threadIdx.x];
}

TEST(CudaEmulatorTest, BarrierMakesSharedWritesVisibleAndItsAbsenceShows) {
  std::vector<int> in(3 * 64);
  std::iota(in.begin(), in.end(), 0);
  int* d_in = DeviceCopy(in);
  int* d_out = DeviceCopy(std::vector<int>(in.size(), -1));
  ASSERT_EQ(Launch(ReverseKernel, 3, 64, 0, d_in, d_out, true), cudaSuccess);
  std::vector<int> out = HostCopy(d_out, in.size());
  for (int i = 0; i < 3 * 64; ++i) EXPECT_EQ(out[i], (i / 64) * 64 + 63 - i % 64) << i;

  // Without the barrier, thread 0 reads tile[63] before thread 63 has written it.
  ASSERT_EQ(Launch(ReverseKernel, 3, 64, 0, d_in, d_out, false), cudaSuccess);
  out = HostCopy(d_out, in.size());
  EXPECT_NE(out[0], 63);
  cudaFree(d_in);
  cudaFree(d_out);
}

__global__ void EarlyExitKernel(int* out) {
  if (threadIdx.x >= 16) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

TEST(CudaEmulatorTest, ExitedThreadsDoNotHoldUpABarrier) {
  int* d_out = DeviceCopy(std::vector<int>(64, 0));
  EXPECT_EQ(Launch(EarlyExitKernel, 1, 64, 0, d_out), cudaSuccess);
  EXPECT_EQ(HostCopy(d_out, 64)[15], 1);
  cudaFree(d_out);
}

// Half a warp waits for the block, the other half for the warp: neither can ever be released.
__global__ void DeadlockKernel(int* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncwarp();
  }
  out[threadIdx.x] = 1;
}

TEST(CudaEmulatorTest, ThreadsWaitingForEachOtherForeverFailTheLaunch) {
  int* d_out = DeviceCopy(std::vector<int>(32, 0));
  EXPECT_EQ(Launch(DeadlockKernel, 1, 32, 0, d_out), cudaErrorLaunchFailure);
  cudaGetLastError();
  cudaFree(d_out);
}

// Warp sums by xor shuffles; lanes of 8-wide groups too.
__global__ void ShuffleSumKernel(const float* in, float* out, int width) {
  float v = in[threadIdx.x];
  for (int offset = width / 2; offset > 0; offset /= 2)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  out[threadIdx.x] = v;
}

TEST(CudaEmulatorTest, XorShufflesSumWithinTheirGroups) {
  std::vector<float> in(64);
  std::iota(in.begin(), in.end(), 1.0f);
  float* d_in = DeviceCopy(in);
  float* d_out = DeviceCopy(std::vector<float>(64, 0.0f));
  for (int width : {32, 8}) {
    ASSERT_EQ(Launch(ShuffleSumKernel, 1, 64, 0, d_in, d_out, width), cudaSuccess);
    const std::vector<float> out = HostCopy(d_out, 64);
    for (int i = 0; i < 64; ++i) {
      const int first = i / width * width;
      float expected = 0.0f;
      for (int j = first; j < first + width; ++j) expected += in[j];
      EXPECT_EQ(out[i], expected) << "width " << width << " lane " << i;
    }
  }
  cudaFree(d_in);
  cudaFree(d_out);
}

__global__ void ShuffleAfterExitKernel(float* out) {
  if (threadIdx.x == 5) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
}

__global__ void DivergentShuffleKernel(float* out) {
  float v = 1.0f;
  if (threadIdx.x % 2 == 0) v = __shfl_xor_sync(0xffffffffu, v, 1);
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, v, 2);
}

TEST(CudaEmulatorTest, ShufflesMissingLanesFailTheLaunch) {
  float* d_out = DeviceCopy(std::vector<float>(32, 0.0f));
  EXPECT_EQ(Launch(ShuffleAfterExitKernel, 1, 32, 0, d_out), cudaErrorLaunchFailure);
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "reading the error clears it";
  EXPECT_EQ(Launch(DivergentShuffleKernel, 1, 32, 0, d_out), cudaErrorLaunchFailure);
  cudaGetLastError();
  cudaFree(d_out);
}

namespace wmma = nvcuda::wmma;

// One warp: C = A B for 16x16 bf16 tiles, B read column-major from `b` (its transpose stored
// row-major), then C += A B again from the stored result.
__global__ void WmmaKernel(const __nv_bfloat16* a, const __nv_bfloat16* b_transposed, float* c) {
  wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
  wmma::fill_fragment(acc, 0.0f);
  wmma::load_matrix_sync(fa, a, 16);
  wmma::load_matrix_sync(fb, b_transposed, 16);
  wmma::mma_sync(acc, fa, fb, acc);
  wmma::store_matrix_sync(c, acc, 16, wmma::mem_row_major);
  wmma::load_matrix_sync(acc, c, 16, wmma::mem_row_major);
  wmma::mma_sync(acc, fa, fb, acc);
  wmma::store_matrix_sync(c, acc, 16, wmma::mem_row_major);
}

TEST(CudaEmulatorTest, WmmaMultipliesTilesAndChecksAlignment) {
  std::vector<__nv_bfloat16> a(256), bt(256);
  std::vector<float> af(256), btf(256);
  for (int i = 0; i < 256; ++i) {
    a[i] = __float2bfloat16_rn(static_cast<float>(i % 7) - 3.0f);
    bt[i] = __float2bfloat16_rn(static_cast<float>(i % 5) * 0.5f);
    af[i] = __bfloat162float(a[i]);
    btf[i] = __bfloat162float(bt[i]);
  }
  __nv_bfloat16* d_a = DeviceCopy(a);
  __nv_bfloat16* d_bt = DeviceCopy(bt);
  float* d_c = DeviceCopy(std::vector<float>(256 + 8, 0.0f));
  ASSERT_EQ(Launch(WmmaKernel, 1, 32, 0, d_a, d_bt, d_c), cudaSuccess);
  const std::vector<float> c = HostCopy(d_c, 256);
  for (int m = 0; m < 16; ++m) {
    for (int n = 0; n < 16; ++n) {
      float expected = 0.0f;
      for (int k = 0; k < 16; ++k) expected += af[m * 16 + k] * btf[n * 16 + k];
      EXPECT_EQ(c[m * 16 + n], 2.0f * expected) << m << "," << n;
    }
  }
  // A pointer 16 bytes off wmma's 256-bit alignment.
  EXPECT_EQ(Launch(WmmaKernel, 1, 32, 0, d_a, d_bt, d_c + 4), cudaErrorLaunchFailure);
  cudaGetLastError();
  cudaFree(d_a);
  cudaFree(d_bt);
  cudaFree(d_c);
}

__global__ void BlockSumKernel(const float* in, float* out) {
  using Reduce = cub::BlockReduce<float, 128>;
  __shared__ Reduce::TempStorage storage;
  const float total = Reduce(storage).Sum(in[threadIdx.x]);
  out[threadIdx.x] = total;
}

TEST(CudaEmulatorTest, BlockReduceGivesTheSumToThreadZeroOnly) {
  std::vector<float> in(128);
  std::iota(in.begin(), in.end(), 0.0f);
  float* d_in = DeviceCopy(in);
  float* d_out = DeviceCopy(std::vector<float>(128, 0.0f));
  ASSERT_EQ(Launch(BlockSumKernel, 1, 128, 0, d_in, d_out), cudaSuccess);
  const std::vector<float> out = HostCopy(d_out, 128);
  EXPECT_EQ(out[0], 127.0f * 128.0f / 2.0f);
  EXPECT_TRUE(std::isnan(out[1])) << "the aggregate is undefined outside thread 0";
  cudaFree(d_in);
  cudaFree(d_out);
}

__global__ void DynamicSharedKernel(float* out) {
  float* shared = reinterpret_cast<float*>(kvserve::cuda_emulator::DynamicSharedMemory());
  out[threadIdx.x] = shared[threadIdx.x];  // never written: NaN bytes
}

TEST(CudaEmulatorTest, DynamicSharedMemoryIsLimitedAndStartsAsNan) {
  float* d_out = DeviceCopy(std::vector<float>(32, 0.0f));
  ASSERT_EQ(Launch(DynamicSharedKernel, 1, 32, 1024, d_out), cudaSuccess);
  EXPECT_TRUE(std::isnan(HostCopy(d_out, 32)[7]));
  const size_t big = 100 * 1024;
  EXPECT_EQ(Launch(DynamicSharedKernel, 1, 32, big, d_out), cudaErrorInvalidValue)
      << "over 48 KiB without opting in";
  cudaGetLastError();
  ASSERT_EQ(cudaFuncSetAttribute(DynamicSharedKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(big)),
            cudaSuccess);
  EXPECT_EQ(Launch(DynamicSharedKernel, 1, 32, big, d_out), cudaSuccess);
  EXPECT_EQ(cudaFuncSetAttribute(DynamicSharedKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 300 * 1024),
            cudaErrorInvalidValue)
      << "past Hopper's 227 KiB";
  cudaGetLastError();
  cudaFree(d_out);
}

TEST(CudaEmulatorTest, BadLaunchShapesAndCopiesAreRefused) {
  float* d_out = DeviceCopy(std::vector<float>(32, 0.0f));
  EXPECT_EQ(Launch(DynamicSharedKernel, 1, 2048, 0, d_out), cudaErrorInvalidConfiguration);
  EXPECT_EQ(Launch(DynamicSharedKernel, dim3(1, 70000), 32, 0, d_out),
            cudaErrorInvalidConfiguration);
  std::vector<float> host(64);
  EXPECT_EQ(cudaMemcpy(host.data(), d_out, 64 * sizeof(float), cudaMemcpyDeviceToHost),
            cudaErrorInvalidValue)
      << "more than the allocation holds";
  EXPECT_EQ(cudaFree(host.data()), cudaErrorInvalidDevicePointer);
  cudaGetLastError();
  cudaFree(d_out);
}

__global__ void ReadKernel(const float* in, float* out, int at) { out[0] = in[at]; }

// Pitched copies and fills touch `width` bytes of each row and leave the rest; launches are
// counted.
TEST(CudaEmulatorTest, PitchedCopiesAndFillsTouchOnlyTheirRowsAndLaunchesAndWaitsAreCounted) {
  std::vector<int> grid(12);
  for (int i = 0; i < 12; ++i) grid[i] = i;  // 3 rows of 4
  int* d_grid = DeviceCopy(grid);
  int* d_narrow = DeviceCopy(std::vector<int>(6, -1));  // 3 rows of 2
  EXPECT_EQ(cudaMemcpy2D(d_narrow, 2 * sizeof(int), d_grid + 1, 4 * sizeof(int), 2 * sizeof(int), 3,
                         cudaMemcpyDeviceToDevice),
            cudaSuccess);
  EXPECT_EQ(HostCopy(d_narrow, 6), (std::vector<int>{1, 2, 5, 6, 9, 10}));
  EXPECT_EQ(cudaMemset2D(d_grid + 2, 4 * sizeof(int), 0, sizeof(int), 3), cudaSuccess);
  EXPECT_EQ(HostCopy(d_grid, 12), (std::vector<int>{0, 1, 0, 3, 4, 5, 0, 7, 8, 9, 0, 11}));
  EXPECT_EQ(cudaMemset2D(d_grid, sizeof(int), 0, 2 * sizeof(int), 2), cudaErrorInvalidValue)
      << "a row wider than its pitch";
  cudaGetLastError();
  const uint64_t before = kvserve::cuda_emulator::LaunchCount();
  float* d_out = DeviceCopy(std::vector<float>(1, 0.0f));
  EXPECT_EQ(Launch(ReadKernel, 1, 1, 0, d_out, d_out, 0), cudaSuccess);
  EXPECT_EQ(Launch(ReadKernel, 1, 1, 0, d_out, d_out, 0), cudaSuccess);
  EXPECT_EQ(kvserve::cuda_emulator::LaunchCount() - before, 2u);
  // Host waits: a synchronisation and a legacy-stream copy count; a launch does not.
  const uint64_t waits = kvserve::cuda_emulator::HostWaitCount();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(Launch(ReadKernel, 1, 1, 0, d_out, d_out, 0), cudaSuccess);
  EXPECT_EQ(HostCopy(d_out, 1).size(), 1u);
  EXPECT_EQ(kvserve::cuda_emulator::HostWaitCount() - waits, 2u);
  cudaFree(d_out);
  cudaFree(d_grid);
  cudaFree(d_narrow);
}

// Stable descending pairs per segment (ties and -0.0 / +0.0 keep their input order), empty
// segments and items outside every segment untouched, then ascending keys.
TEST(CudaEmulatorTest, SegmentedRadixSortIsStableAndKeepsToItsSegments) {
  const std::vector<float> keys = {1.0f, 3.0f, 1.0f, 0.0f, -0.0f, 3.0f, 7.0f, 2.0f, -1.0f, 2.0f};
  std::vector<int> values(keys.size());
  std::iota(values.begin(), values.end(), 0);
  const std::vector<int> begins = {0, 6, 6, 7};
  const std::vector<int> ends = {6, 6, 5, 10};  // [0, 6), empty, empty, [7, 10); item 6 in none
  float* d_keys = DeviceCopy(keys);
  int* d_values = DeviceCopy(values);
  float* d_keys_out = DeviceCopy(std::vector<float>(keys.size(), 99.0f));
  int* d_values_out = DeviceCopy(std::vector<int>(keys.size(), -1));
  int* d_begins = DeviceCopy(begins);
  int* d_ends = DeviceCopy(ends);
  size_t bytes = 0;
  ASSERT_EQ(
      cub::DeviceSegmentedRadixSort::SortPairsDescending(
          nullptr, bytes, d_keys, d_keys_out, d_values, d_values_out, 10, 4, d_begins, d_ends),
      cudaSuccess);
  void* d_temp = nullptr;
  ASSERT_EQ(cudaMalloc(&d_temp, bytes), cudaSuccess);
  ASSERT_EQ(cub::DeviceSegmentedRadixSort::SortPairsDescending(
                d_temp, bytes, d_keys, d_keys_out, d_values, d_values_out, 10, 4, d_begins, d_ends),
            cudaSuccess);
  EXPECT_EQ(HostCopy(d_values_out, 10), (std::vector<int>{1, 5, 0, 2, 3, 4, -1, 7, 9, 8}));
  EXPECT_EQ(HostCopy(d_keys_out, 10)[6], 99.0f);

  int* d_ints = DeviceCopy(std::vector<int>{5, -2, 9, 0, 4});
  int* d_ints_out = DeviceCopy(std::vector<int>(5, 0));
  int* d_one = DeviceCopy(std::vector<int>{0});
  int* d_five = DeviceCopy(std::vector<int>{5});
  ASSERT_EQ(cub::DeviceSegmentedRadixSort::SortKeys(d_temp, bytes, d_ints, d_ints_out, 5, 1, d_one,
                                                    d_five),
            cudaSuccess);
  EXPECT_EQ(HostCopy(d_ints_out, 5), (std::vector<int>{-2, 0, 4, 5, 9}));

  for (void* p :
       {static_cast<void*>(d_keys), static_cast<void*>(d_values), static_cast<void*>(d_keys_out),
        static_cast<void*>(d_values_out), static_cast<void*>(d_begins), static_cast<void*>(d_ends),
        d_temp, static_cast<void*>(d_ints), static_cast<void*>(d_ints_out),
        static_cast<void*>(d_one), static_cast<void*>(d_five)}) {
    cudaFree(p);
  }
}

// Too little temporary storage, host memory, an output over an input: refused, as CUB would
// (the first) or as its contract forbids (the others).
TEST(CudaEmulatorTest, SegmentedRadixSortRefusesCallsOutsideItsContract) {
  float* d_keys = DeviceCopy(std::vector<float>(8, 1.0f));
  float* d_keys_out = DeviceCopy(std::vector<float>(8, 0.0f));
  int* d_offsets = DeviceCopy(std::vector<int>{0, 8});
  size_t bytes = 0;
  ASSERT_EQ(cub::DeviceSegmentedRadixSort::SortKeys(nullptr, bytes, d_keys, d_keys_out, 8, 1,
                                                    d_offsets, d_offsets + 1),
            cudaSuccess);
  void* d_temp = nullptr;
  ASSERT_EQ(cudaMalloc(&d_temp, bytes), cudaSuccess);
  size_t short_bytes = bytes - 1;
  EXPECT_EQ(cub::DeviceSegmentedRadixSort::SortKeys(d_temp, short_bytes, d_keys, d_keys_out, 8, 1,
                                                    d_offsets, d_offsets + 1),
            cudaErrorInvalidValue);
  std::vector<float> host_out(8);
  EXPECT_EQ(cub::DeviceSegmentedRadixSort::SortKeys(d_temp, bytes, d_keys, host_out.data(), 8, 1,
                                                    d_offsets, d_offsets + 1),
            cudaErrorInvalidValue);
  int* d_six = DeviceCopy(std::vector<int>{0, 6});
  EXPECT_EQ(cub::DeviceSegmentedRadixSort::SortKeys(d_temp, bytes, d_keys, d_keys + 2, 6, 1, d_six,
                                                    d_six + 1),
            cudaErrorInvalidValue);
  EXPECT_EQ(cub::DeviceSegmentedRadixSort::SortKeys(d_temp, bytes, d_keys, d_keys_out, 6, 1, d_six,
                                                    d_six + 1),
            cudaSuccess);
  cudaFree(d_six);
  cudaFree(d_keys);
  cudaFree(d_keys_out);
  cudaFree(d_offsets);
  cudaFree(d_temp);
}

// 100 floats are 400 bytes, rounded up to CUDA's 256-byte granule: float 128 is the first byte of
// the guard page.
// Sets a stream schedule for one test and restores the eager one after it.
class StreamScheduleTest : public ::testing::Test {
 protected:
  void TearDown() override {
    kvserve::cuda_emulator::SetStreamSchedule(kvserve::cuda_emulator::StreamSchedule::kEager);
  }
};

__global__ void StoreKernel(int* out, int value) { out[threadIdx.x] = value; }
__global__ void AddOneKernel(const int* in, int* out) { out[threadIdx.x] = in[threadIdx.x] + 1; }

template <typename... Params, typename... Args>
cudaError_t LaunchOn(cudaStream_t stream, void (*kernel)(Params...), int threads, Args... args) {
  cudaLaunchConfig_t config{};
  config.gridDim = 1;
  config.blockDim = threads;
  config.stream = stream;
  return cudaLaunchKernelEx(&config, kernel, args...);
}

// Stream a writes x; stream b computes y = x + 1, waiting for a's event or not.
std::vector<int> ProducerConsumer(bool wait) {
  int* x = DeviceCopy(std::vector<int>(4, 0));
  int* y = DeviceCopy(std::vector<int>(4, -1));
  cudaStream_t a = nullptr;
  cudaStream_t b = nullptr;
  cudaEvent_t written = nullptr;
  EXPECT_EQ(cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking), cudaSuccess);
  EXPECT_EQ(cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking), cudaSuccess);
  EXPECT_EQ(cudaEventCreateWithFlags(&written, cudaEventDisableTiming), cudaSuccess);
  EXPECT_EQ(LaunchOn(a, StoreKernel, 4, x, 41), cudaSuccess);
  EXPECT_EQ(cudaEventRecord(written, a), cudaSuccess);
  if (wait) {
    EXPECT_EQ(cudaStreamWaitEvent(b, written, 0), cudaSuccess);
  }
  EXPECT_EQ(LaunchOn(b, AddOneKernel, 4, static_cast<const int*>(x), y), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(b), cudaSuccess);
  std::vector<int> out = HostCopy(y, 4);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cudaEventDestroy(written);
  cudaStreamDestroy(a);
  cudaStreamDestroy(b);
  cudaFree(x);
  cudaFree(y);
  return out;
}

TEST_F(StreamScheduleTest, EventWaitsOrderStreamsAndTheirAbsenceShowsLatestFirst) {
  using kvserve::cuda_emulator::StreamSchedule;
  for (StreamSchedule schedule :
       {StreamSchedule::kEager, StreamSchedule::kIssueOrder, StreamSchedule::kLatestFirst}) {
    kvserve::cuda_emulator::SetStreamSchedule(schedule);
    EXPECT_EQ(ProducerConsumer(true), std::vector<int>(4, 42)) << static_cast<int>(schedule);
  }
  // Without the wait, the latest-first schedule runs the consumer before the producer.
  kvserve::cuda_emulator::SetStreamSchedule(StreamSchedule::kLatestFirst);
  EXPECT_EQ(ProducerConsumer(false), std::vector<int>(4, 1));
}

TEST_F(StreamScheduleTest, DeferredWorkRunsWhenTheHostSynchronises) {
  kvserve::cuda_emulator::SetStreamSchedule(kvserve::cuda_emulator::StreamSchedule::kIssueOrder);
  int* x = DeviceCopy(std::vector<int>(2, 0));
  cudaStream_t s = nullptr;
  cudaEvent_t done = nullptr;
  ASSERT_EQ(cudaStreamCreate(&s), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&done), cudaSuccess);
  EXPECT_EQ(cudaEventQuery(done), cudaSuccess);  // never recorded: complete
  ASSERT_EQ(LaunchOn(s, StoreKernel, 2, x, 7), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(done, s), cudaSuccess);
  EXPECT_EQ(cudaEventQuery(done), cudaErrorNotReady);
  EXPECT_EQ(cudaEventSynchronize(done), cudaSuccess);
  EXPECT_EQ(cudaEventQuery(done), cudaSuccess);
  // A blocking stream's work runs before the legacy default stream's copy reads the result.
  ASSERT_EQ(LaunchOn(s, StoreKernel, 2, x, 9), cudaSuccess);
  EXPECT_EQ(HostCopy(x, 2), std::vector<int>(2, 9));
  // An event destroyed while a wait on it is queued: its record runs first, the wait is met.
  cudaStream_t other = nullptr;
  cudaEvent_t gone = nullptr;
  ASSERT_EQ(cudaStreamCreate(&other), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&gone), cudaSuccess);
  ASSERT_EQ(LaunchOn(s, StoreKernel, 2, x, 3), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(gone, s), cudaSuccess);
  ASSERT_EQ(cudaStreamWaitEvent(other, gone, 0), cudaSuccess);
  EXPECT_EQ(cudaEventDestroy(gone), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(other), cudaSuccess);
  EXPECT_EQ(HostCopy(x, 2), std::vector<int>(2, 3));
  cudaStreamDestroy(other);
  // A bad launch is refused at once.
  EXPECT_EQ(LaunchOn(s, StoreKernel, 2048, x, 1), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  cudaEventDestroy(done);
  cudaStreamDestroy(s);
  cudaFree(x);
}

// A captured stream records its work without running it; each graph launch runs that work again
// with the captured arguments, reading the buffers' contents at launch time. Calls a capture
// cannot take invalidate it.
TEST_F(StreamScheduleTest, CapturedGraphsReplayTheirWorkAndRefuseUnsafeCalls) {
  int* x = DeviceCopy(std::vector<int>(4, 1));
  int* y = DeviceCopy(std::vector<int>(4, -1));
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  const uint64_t before = kvserve::cuda_emulator::LaunchCount();
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  EXPECT_EQ(cudaStreamIsCapturing(s, &status), cudaSuccess);
  EXPECT_EQ(status, cudaStreamCaptureStatusActive);
  EXPECT_EQ(LaunchOn(s, AddOneKernel, 4, static_cast<const int*>(x), y), cudaSuccess);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(s, &graph), cudaSuccess);
  EXPECT_EQ(kvserve::cuda_emulator::LaunchCount() - before, 1u);
  EXPECT_EQ(HostCopy(y, 4), std::vector<int>(4, -1)) << "captured, not run";
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, s), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(HostCopy(y, 4), std::vector<int>(4, 2));
  // New inputs in the same buffer: the replay reads them.
  ASSERT_EQ(cudaMemcpy(x, std::vector<int>(4, 9).data(), 4 * sizeof(int), cudaMemcpyHostToDevice),
            cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, s), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(HostCopy(y, 4), std::vector<int>(4, 10));
  EXPECT_EQ(kvserve::cuda_emulator::LaunchCount() - before, 1u) << "replays add no launches";

  // A synchronisation, a legacy-stream copy or a wait on an outside event while capturing.
  cudaEvent_t outside = nullptr;
  ASSERT_EQ(cudaEventCreateWithFlags(&outside, cudaEventDisableTiming), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(outside, s), cudaSuccess);
  const std::function<cudaError_t()> unsafe[] = {
      [&] { return cudaStreamSynchronize(s); },
      [&] { return cudaMemcpy(y, x, 4 * sizeof(int), cudaMemcpyDeviceToDevice); },
      [&] { return cudaStreamWaitEvent(s, outside, 0); }};
  for (const auto& call : unsafe) {
    ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
    EXPECT_EQ(call(), cudaErrorStreamCaptureUnsupported);
    cudaGraph_t invalid = nullptr;
    EXPECT_EQ(cudaStreamEndCapture(s, &invalid), cudaErrorStreamCaptureInvalidated);
    EXPECT_EQ(invalid, nullptr);
  }
  cudaEventDestroy(outside);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(s);
  cudaFree(x);
  cudaFree(y);
}

// A wait on an event recorded in a capture forks the capture into the waiting stream: its work
// joins the graph, which CUDA refuses to end until the origin has waited on that stream again.
TEST_F(StreamScheduleTest, CapturesForkIntoOtherStreamsAndMustJoinThem) {
  int* x = DeviceCopy(std::vector<int>(4, 1));
  int* y = DeviceCopy(std::vector<int>(4, -1));
  cudaStream_t s = nullptr, side = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking), cudaSuccess);
  cudaEvent_t fork = nullptr, join = nullptr;
  ASSERT_EQ(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming), cudaSuccess);
  ASSERT_EQ(cudaEventCreateWithFlags(&join, cudaEventDisableTiming), cudaSuccess);
  // x = 5 on the origin, then y = x + 1 on the side stream, then x = 7 on the origin again.
  auto capture = [&](bool joined, cudaGraph_t* graph) {
    EXPECT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
    EXPECT_EQ(LaunchOn(s, StoreKernel, 4, x, 5), cudaSuccess);
    EXPECT_EQ(cudaEventRecord(fork, s), cudaSuccess);
    EXPECT_EQ(cudaStreamWaitEvent(side, fork, 0), cudaSuccess);
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    EXPECT_EQ(cudaStreamIsCapturing(side, &status), cudaSuccess);
    EXPECT_EQ(status, cudaStreamCaptureStatusActive);
    EXPECT_EQ(LaunchOn(side, AddOneKernel, 4, static_cast<const int*>(x), y), cudaSuccess);
    EXPECT_EQ(cudaEventRecord(join, side), cudaSuccess);
    if (joined) {
      EXPECT_EQ(cudaStreamWaitEvent(s, join, 0), cudaSuccess);
    }
    EXPECT_EQ(LaunchOn(s, StoreKernel, 4, x, 7), cudaSuccess);
    return cudaStreamEndCapture(s, graph);
  };
  cudaGraph_t unjoined = nullptr;
  EXPECT_EQ(capture(false, &unjoined), cudaErrorStreamCaptureUnjoined);
  EXPECT_EQ(unjoined, nullptr);
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusActive;
  EXPECT_EQ(cudaStreamIsCapturing(side, &status), cudaSuccess);
  EXPECT_EQ(status, cudaStreamCaptureStatusNone) << "the capture's end releases its forks";

  cudaGraph_t graph = nullptr;
  ASSERT_EQ(capture(true, &graph), cudaSuccess);
  EXPECT_EQ(HostCopy(y, 4), std::vector<int>(4, -1)) << "captured, not run";
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, s), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(HostCopy(y, 4), std::vector<int>(4, 6)) << "the side stream's work ran in order";
  EXPECT_EQ(HostCopy(x, 4), std::vector<int>(4, 7));
  // A record in a capture records nothing outside it: a later wait on it waits for nothing.
  ASSERT_EQ(cudaStreamWaitEvent(side, join, 0), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(side), cudaSuccess);

  // A forked stream that waits on work outside the capture invalidates it.
  cudaEvent_t outside = nullptr;
  ASSERT_EQ(cudaEventCreateWithFlags(&outside, cudaEventDisableTiming), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(outside, side), cudaSuccess);
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(fork, s), cudaSuccess);
  ASSERT_EQ(cudaStreamWaitEvent(side, fork, 0), cudaSuccess);
  EXPECT_EQ(cudaStreamWaitEvent(side, outside, 0), cudaErrorStreamCaptureUnsupported);
  cudaGraph_t invalid = nullptr;
  EXPECT_EQ(cudaStreamEndCapture(s, &invalid), cudaErrorStreamCaptureInvalidated);
  EXPECT_EQ(invalid, nullptr);

  for (cudaEvent_t e : {fork, join, outside}) cudaEventDestroy(e);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(side);
  cudaStreamDestroy(s);
  cudaFree(x);
  cudaFree(y);
}

TEST(CudaEmulatorTest, MappedPinnedMemoryIsWhatKernelsReadAndWrite) {
  void* host = nullptr;
  ASSERT_EQ(cudaHostAlloc(&host, 4 * sizeof(int), cudaHostAllocMapped), cudaSuccess);
  void* device = nullptr;
  ASSERT_EQ(cudaHostGetDevicePointer(&device, host, 0), cudaSuccess);
  ASSERT_EQ(LaunchOn(nullptr, StoreKernel, 4, static_cast<int*>(device), 5), cudaSuccess);
  EXPECT_EQ(std::vector<int>(static_cast<int*>(host), static_cast<int*>(host) + 4),
            std::vector<int>(4, 5));
  int* d = DeviceCopy(std::vector<int>(4, 0));
  EXPECT_EQ(cudaMemcpy(d, device, 4 * sizeof(int), cudaMemcpyDeviceToDevice), cudaSuccess);
  EXPECT_EQ(HostCopy(d, 4), std::vector<int>(4, 5));
  // Pinned but not mapped: not the device's to touch.
  void* unmapped = nullptr;
  ASSERT_EQ(cudaMallocHost(&unmapped, 16), cudaSuccess);
  EXPECT_EQ(cudaHostGetDevicePointer(&device, unmapped, 0), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(d, unmapped, 16, cudaMemcpyDeviceToDevice), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(d, unmapped, 16, cudaMemcpyHostToDevice), cudaSuccess);
  cudaGetLastError();
  EXPECT_EQ(cudaFreeHost(unmapped), cudaSuccess);
  EXPECT_EQ(cudaFreeHost(host), cudaSuccess);
  EXPECT_EQ(cudaFreeHost(host), cudaErrorInvalidValue);
  cudaGetLastError();
  cudaFree(d);
}

TEST(CudaEmulatorDeathTest, ReadingPastABufferCrashes) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  float* d_in = DeviceCopy(std::vector<float>(100, 1.0f));
  float* d_out = DeviceCopy(std::vector<float>(1, 0.0f));
  ASSERT_EQ(Launch(ReadKernel, 1, 1, 0, d_in, d_out, 99), cudaSuccess);
  EXPECT_DEATH(Launch(ReadKernel, 1, 1, 0, d_in, d_out, 128), "");
  cudaFree(d_in);
  cudaFree(d_out);
}

}  // namespace
