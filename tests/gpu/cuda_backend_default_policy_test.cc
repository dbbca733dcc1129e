// The CUDA backend's policy support as the server asks for it at startup: on a model whose query
// group exceeds the page-sparse decode kernel's (grouped-query attention of 16 heads per KV head,
// as in Llama-3.1-405B), the tiered policies are refused naming the policy and the backend; the
// dense and prompt-compressing policies are served.
#include <gtest/gtest.h>

#include "engine/model/synthetic_model.h"
#include "engine/runtime/cuda/cuda_backend.h"
#include "engine/runtime/default_kv_policy.h"
#include "kernels/decode_attention.h"
#include "tests/gpu/cuda_backend_fixture.h"

namespace kvserve::testing {
namespace {

TEST(CudaBackendDefaultPolicyTest, TieredPoliciesAreRefusedWhereTheQueryGroupIsTooLarge) {
  auto config = SyntheticModelConfig("stories260k");
  ASSERT_TRUE(config.ok()) << config.status();
  config->name = "synthetic:stories260k-mqa16";
  config->n_layers = 2;
  config->n_heads = 16;
  config->n_kv_heads = 1;
  config->head_dim = 64;  // what the attention kernels take
  config->rope_dim = 64;
  config->dim = config->n_heads * config->head_dim;
  ASSERT_GT(config->group_size(), kernels::kDecodeMaxGroup);
  auto model = MakeSyntheticModel(*config, 3, int64_t{1} << 30);
  ASSERT_TRUE(model.ok()) << model.status();
  auto backend = CudaBackend::Create(model->config, std::move(model->weights),
                                     {.gpu_memory_fraction = kTestGpuMemoryFraction});
  ASSERT_TRUE(backend.ok()) << backend.status();
  for (const char* name : {"quest", "freekv", "fastkv_freekv"}) {
    auto policy = ResolveDefaultKvPolicy(name, 16, **backend);
    ASSERT_FALSE(policy.ok()) << name;
    EXPECT_EQ(policy.status().code(), absl::StatusCode::kFailedPrecondition) << name;
    EXPECT_NE(policy.status().message().find(absl::StrCat("'", name, "'")), std::string::npos)
        << policy.status();
    EXPECT_NE(policy.status().message().find("cuda backend"), std::string::npos) << policy.status();
  }
  for (const char* name : {"full", "snapkv", "fastkv"}) {
    auto policy = ResolveDefaultKvPolicy(name, 16, **backend);
    EXPECT_TRUE(policy.ok()) << name << ": " << policy.status();
  }
}

}  // namespace
}  // namespace kvserve::testing
