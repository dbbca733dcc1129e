#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "kernels/bf16.h"

namespace kvserve::kernels::testing {

#define ASSERT_CUDA_OK(expr)                                         \
  do {                                                               \
    const cudaError_t kvserve_cuda_status = (expr);                  \
    ASSERT_EQ(kvserve_cuda_status, cudaSuccess)                      \
        << #expr << ": " << cudaGetErrorString(kvserve_cuda_status); \
  } while (false)

inline bool HasCudaDevice() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

// Every gpu test derives from this: without a device it skips before touching CUDA further.
class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HasCudaDevice()) GTEST_SKIP() << "no CUDA device";
  }
};

// Parameterised gpu tests: the same skip.
template <typename Param>
class GpuTestWithParam : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    if (!HasCudaDevice()) GTEST_SKIP() << "no CUDA device";
  }
};

// Device memory holding a copy of a host vector; freed with the buffer.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t count) : count_(count) {
    void* memory = nullptr;
    if (cudaMalloc(&memory, std::max<size_t>(count, 1) * sizeof(T)) != cudaSuccess) {
      ADD_FAILURE() << "cudaMalloc of " << count * sizeof(T) << " bytes failed";
      return;
    }
    data_ = static_cast<T*>(memory);
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) {
    if (data_ != nullptr && !host.empty()) {
      EXPECT_EQ(cudaMemcpy(data_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
                cudaSuccess);
    }
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { cudaFree(data_); }

  T* data() const { return data_; }
  // Waits for the device, then copies the contents back.
  std::vector<T> ToHost() const {
    std::vector<T> host(count_);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    if (data_ != nullptr && count_ > 0) {
      EXPECT_EQ(cudaMemcpy(host.data(), data_, count_ * sizeof(T), cudaMemcpyDeviceToHost),
                cudaSuccess);
    }
    return host;
  }

 private:
  T* data_ = nullptr;
  size_t count_ = 0;
};

// `count` bf16 values drawn from N(0, scale^2), already rounded as a bf16 tensor holds them.
inline std::vector<Bf16> RandomBf16(size_t count, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<Bf16> values(count);
  for (Bf16& v : values) v = ToBf16(normal(rng));
  return values;
}

// Elementwise |actual - expected| <= atol + rtol * |expected|; reports the worst element and a
// count rather than one failure per element.
inline void ExpectAllNear(const std::vector<float>& actual, const std::vector<float>& expected,
                          float atol, float rtol, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  size_t bad = 0;
  size_t worst = 0;
  double worst_excess = -INFINITY;
  double max_diff = 0.0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double diff = std::abs(double{actual[i]} - expected[i]);
    const double allowed = atol + rtol * std::abs(double{expected[i]});
    if (!(diff <= allowed)) ++bad;  // a NaN fails too
    const double excess = std::isnan(diff) ? INFINITY : diff - allowed;
    if (excess > worst_excess) {
      worst_excess = excess;
      worst = i;
    }
    if (!std::isnan(diff)) max_diff = std::max(max_diff, diff);
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << actual.size()
                     << " elements out of tolerance; worst at " << worst << ": " << actual[worst]
                     << " vs " << expected[worst] << "; max |difference| " << max_diff;
}

inline std::vector<float> ToFloats(const std::vector<Bf16>& values) {
  std::vector<float> out(values.size());
  std::transform(values.begin(), values.end(), out.begin(), [](Bf16 v) { return ToFloat(v); });
  return out;
}

inline void ExpectAllNear(const std::vector<Bf16>& actual, const std::vector<Bf16>& expected,
                          float atol, float rtol, const std::string& what) {
  ExpectAllNear(ToFloats(actual), ToFloats(expected), atol, rtol, what);
}

// Bitwise equality of bf16 tensors (copies and exactly rounded sums).
inline void ExpectBitsEqual(const std::vector<Bf16>& actual, const std::vector<Bf16>& expected,
                            const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  size_t bad = 0;
  size_t first = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    if (actual[i].bits != expected[i].bits && bad++ == 0) first = i;
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << actual.size()
                     << " elements differ; first at " << first;
}

}  // namespace kvserve::kernels::testing
