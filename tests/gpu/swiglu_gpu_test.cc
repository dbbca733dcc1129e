// LaunchSwiglu against its CPU twin on the fused [gate | up] layout, large gates included.
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu_reference/swiglu.h"
#include "kernels/swiglu.h"
#include "tests/gpu/gpu_test_support.h"

namespace kvserve::kernels {
namespace {

using testing::DeviceBuffer;
using testing::RandomBf16;

class SwigluGpuTest : public testing::GpuTestWithParam<int> {};

TEST_P(SwigluGpuTest, MatchesTwin) {
  const int ffn = GetParam();
  const int rows = 7;
  std::mt19937 rng(ffn);
  std::vector<Bf16> gate_up = RandomBf16(static_cast<size_t>(rows) * 2 * ffn, rng, 4.0f);
  // Saturating gates: silu(-100) underflows to -0, silu(100) is the gate itself.
  gate_up[0] = ToBf16(-100.0f);
  gate_up[1] = ToBf16(100.0f);

  std::vector<Bf16> expected(static_cast<size_t>(rows) * ffn);
  reference::Swiglu(gate_up.data(), expected.data(), rows, ffn);
  DeviceBuffer<Bf16> d_gate_up(gate_up);
  DeviceBuffer<Bf16> d_out(expected.size());
  ASSERT_CUDA_OK(LaunchSwiglu(d_gate_up.data(), d_out.data(), rows, ffn, nullptr));
  testing::ExpectAllNear(d_out.ToHost(), expected, 1e-3f, 1.6e-2f, std::to_string(ffn));
}

// SmolLM2's and Llama-3.1-8B's FFN widths and an odd one.
INSTANTIATE_TEST_SUITE_P(Widths, SwigluGpuTest, ::testing::Values(1536, 14336, 37),
                         ::testing::PrintToStringParamName());

}  // namespace
}  // namespace kvserve::kernels
