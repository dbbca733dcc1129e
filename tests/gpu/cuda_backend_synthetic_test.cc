// synthetic:NAME made on the device: the same weights as the host generator's (rounded to bf16),
// and llama-3.1-8b materialized and run without a host copy.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "engine/model/synthetic_model.h"
#include "engine/scheduler/batch_generator.h"
#include "tests/gpu/cuda_backend_fixture.h"
#include "tests/support/teacher_forced.h"

namespace kvserve::testing {
namespace {

using CudaBackendSyntheticTest = kernels::testing::GpuTest;

// One 24-token prefill and three decode steps on a fresh cache; the logits rows of every step.
std::vector<std::vector<float>> PrefillThenDecode(Backend& backend) {
  const ModelConfig& c = backend.config();
  std::vector<int32_t> tokens(27);
  for (size_t i = 0; i < tokens.size(); ++i)
    tokens[i] = static_cast<int32_t>((i * 7919 + 13) % c.vocab_size);
  return TeacherForcedLogits(backend, tokens, /*prefill=*/24);
}

TEST_F(CudaBackendSyntheticTest, DeviceWeightsEqualHostWeightsRoundedToBf16) {
  constexpr uint64_t kSeed = 1234;
  auto host = MakeSyntheticModel("smollm2-135m", kSeed, int64_t{1} << 40);
  ASSERT_TRUE(host.ok()) << host.status();
  auto uploaded = CudaBackend::Create(host->config, std::move(host->weights),
                                      {.gpu_memory_fraction = kTestGpuMemoryFraction});
  ASSERT_TRUE(uploaded.ok()) << uploaded.status();
  const auto expected = PrefillThenDecode(**uploaded);
  uploaded->reset();  // one backend's pool at a time
  auto generated = CudaBackend::CreateSynthetic("smollm2-135m", kSeed,
                                                {.gpu_memory_fraction = kTestGpuMemoryFraction});
  ASSERT_TRUE(generated.ok()) << generated.status();
  const auto actual = PrefillThenDecode(**generated);
  ASSERT_EQ(actual.size(), expected.size());
  // Identical bf16 weights through identical kernels and GEMM shapes: identical logits.
  for (size_t i = 0; i < actual.size(); ++i) EXPECT_EQ(actual[i], expected[i]) << "step " << i;
}

// The engine's device pool and host tier on CUDA hand out page ids only (the K/V live in the
// backend's bf16 arena and pinned host tier, no host fp32 slabs behind them), and the engine
// generates what a Forward loop over a host-backed pool gives.
TEST_F(CudaBackendSyntheticTest, TheEnginesDevicePoolIsIdsOnlyAndGeneratesAsForwardDoes) {
  auto backend = CudaBackend::CreateSynthetic("smollm2-135m", 77,
                                              {.gpu_memory_fraction = kTestGpuMemoryFraction});
  ASSERT_TRUE(backend.ok()) << backend.status();
  Backend& cuda = **backend;
  const ModelConfig& c = cuda.config();
  const KvPageShape shape{.n_kv_heads = c.n_kv_heads, .page_size = 32, .head_dim = c.head_dim};
  EXPECT_EQ(cuda.AcquireKvPageStore(KvTier::kDevice, shape, 64), nullptr);
  // The host tier is the backend's mapped pinned memory (tiered policies): ids only here too.
  EXPECT_EQ(cuda.AcquireKvPageStore(KvTier::kHost, shape, 64), nullptr);
  // Both are bf16, and --kv-dtype can ask for nothing else here.
  EXPECT_EQ(cuda.kv_dtype(), KvDtype::kBf16);
  EXPECT_EQ(cuda.kv_element_bytes(), 2u);
  EXPECT_TRUE(cuda.SetKvDtype(KvDtype::kBf16).ok());
  const absl::Status f16 = cuda.SetKvDtype(KvDtype::kF16);
  EXPECT_EQ(f16.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(f16.message().find("'cuda'"), std::string_view::npos) << f16;

  std::vector<int32_t> prompt(20);
  for (size_t i = 0; i < prompt.size(); ++i)
    prompt[i] = static_cast<int32_t>((i * 104729 + 7) % c.vocab_size);
  constexpr int kNew = 3;
  // Greedy through Forward on a cache whose pool has host memory of its own.
  std::vector<int32_t> expected;
  {
    PagePool pool(shape, PagePool::kUnbounded);
    SequenceKvCache kv(pool, c.n_layers);
    std::vector<int32_t> tokens = prompt;
    for (int at = 0; static_cast<int>(expected.size()) < kNew;) {
      const int n = static_cast<int>(tokens.size()) - at;
      const std::vector<int32_t> positions = Positions(at, n);
      const SequenceChunk step{
          .tokens = std::span(tokens).subspan(at, n), .positions = positions, .kv = &kv};
      std::vector<float> logits;
      ASSERT_TRUE(cuda.Forward(std::span(&step, 1), &logits).ok());
      const auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
      expected.push_back(static_cast<int32_t>(best));
      tokens.push_back(expected.back());
      at += n;
    }
  }
  BatchGenerator gen(cuda, {.page_size = 32});
  const GenerationRequest r{.prompt = prompt, .max_new_tokens = kNew, .ignore_eos = true};
  auto out = gen.Generate(std::span(&r, 1));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->front().tokens, expected);
}

TEST_F(CudaBackendSyntheticTest, Llama31_8bMaterializesOnTheDeviceAndRuns) {
  size_t free_bytes = 0, total_bytes = 0;
  ASSERT_CUDA_OK(cudaMemGetInfo(&free_bytes, &total_bytes));
  if (free_bytes < (size_t{24} << 30)) GTEST_SKIP() << "needs 24 GiB of free device memory";
  const double fraction = static_cast<double>(size_t{20} << 30) / free_bytes;
  auto backend = CudaBackend::CreateSynthetic("llama-3.1-8b", 7, {.gpu_memory_fraction = fraction});
  ASSERT_TRUE(backend.ok()) << backend.status();
  EXPECT_EQ((*backend)->config().name, "synthetic:llama-3.1-8b");
  const auto rows = PrefillThenDecode(**backend);
  ASSERT_EQ(rows.size(), 4u);
  for (const std::vector<float>& row : rows) {
    ASSERT_EQ(row.size(), 128256u);
    for (float v : row) ASSERT_TRUE(std::isfinite(v));
  }
}

}  // namespace
}  // namespace kvserve::testing
