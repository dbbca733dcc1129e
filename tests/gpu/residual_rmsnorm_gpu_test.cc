// LaunchResidualRmsNorm against its CPU twin: the updated residual stream bit for bit (one
// rounded fp32 add), the normalised rows within bf16 rounding.
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu_reference/residual_rmsnorm.h"
#include "kernels/residual_rmsnorm.h"
#include "tests/gpu/gpu_test_support.h"

namespace kvserve::kernels {
namespace {

using testing::DeviceBuffer;
using testing::RandomBf16;

// bf16 keeps 8 significant bits: allow two units in the last place of the larger magnitude.
constexpr float kAtol = 1e-3f;
constexpr float kRtol = 1.6e-2f;

class ResidualRmsNormGpuTest : public testing::GpuTestWithParam<int> {};

void CheckAgainstTwin(int dim, bool with_residual) {
  const int rows = 5;
  const float eps = 1e-5f;
  std::mt19937 rng(dim * 2 + with_residual);
  const size_t n = static_cast<size_t>(rows) * dim;
  std::vector<Bf16> x = RandomBf16(n, rng, 3.0f);
  const std::vector<Bf16> residual = RandomBf16(n, rng);
  const std::vector<Bf16> weight = RandomBf16(dim, rng);

  DeviceBuffer<Bf16> d_x(x);
  DeviceBuffer<Bf16> d_residual(residual);
  DeviceBuffer<Bf16> d_weight(weight);
  DeviceBuffer<Bf16> d_y(n);
  ASSERT_CUDA_OK(LaunchResidualRmsNorm(d_x.data(), with_residual ? d_residual.data() : nullptr,
                                       d_weight.data(), d_y.data(), rows, dim, eps, nullptr));

  std::vector<Bf16> y(n);
  reference::ResidualRmsNorm(x.data(), with_residual ? residual.data() : nullptr, weight.data(),
                             y.data(), rows, dim, eps);
  const std::string what = std::to_string(dim) + (with_residual ? " with residual" : " alone");
  testing::ExpectBitsEqual(d_x.ToHost(), x, what + " stream");
  testing::ExpectAllNear(d_y.ToHost(), y, kAtol, kRtol, what + " normalised");
}

TEST_P(ResidualRmsNormGpuTest, AddsResidualThenNormalises) { CheckAgainstTwin(GetParam(), true); }

TEST_P(ResidualRmsNormGpuTest, NormalisesAloneWithoutResidual) {
  CheckAgainstTwin(GetParam(), false);
}

INSTANTIATE_TEST_SUITE_P(Dims, ResidualRmsNormGpuTest, ::testing::Values(576, 4096, 37, 1000),
                         ::testing::PrintToStringParamName());

}  // namespace
}  // namespace kvserve::kernels
