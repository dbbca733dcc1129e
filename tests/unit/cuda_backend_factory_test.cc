// "--backend cuda" where it cannot run fails with a message that says why: no CUDA in this build,
// or no device. Runs in every build; where a device is present there is nothing to check.
#include <gtest/gtest.h>

#include "engine/model/synthetic_model.h"
#include "engine/runtime/backend_factory.h"

namespace kvserve::testing {
namespace {

TEST(CudaBackendFactoryTest, CudaWithoutDeviceOrWithoutCudaBuildFailsClearly) {
  auto config = SyntheticModelConfig("stories260k");
  ASSERT_TRUE(config.ok()) << config.status();
  // Empty weights: with a device the factory gets as far as the weights check and stops there,
  // before touching the GPU.
  auto backend = CreateBackend("cuda", *config, ModelWeights{});
  ASSERT_FALSE(backend.ok());
  const absl::Status& s = backend.status();
  if (s.code() == absl::StatusCode::kFailedPrecondition) {
    EXPECT_EQ(s.message(), "backend 'cuda': no CUDA device found");
  } else if (s.code() == absl::StatusCode::kUnimplemented) {
    EXPECT_EQ(s.message(),
              "backend 'cuda': this build has no CUDA backend; configure with the cuda preset");
  } else {
    GTEST_SKIP() << "a CUDA device is present: " << s;
  }
}

TEST(CudaBackendFactoryTest, UnknownBackendNamesTheChoices) {
  auto config = SyntheticModelConfig("stories260k");
  ASSERT_TRUE(config.ok()) << config.status();
  auto backend = CreateBackend("tpu", *config, ModelWeights{});
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(backend.status().message().find("cpu, cuda"), absl::string_view::npos);
}

}  // namespace
}  // namespace kvserve::testing
