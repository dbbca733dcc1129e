// LoadEngine with --backend cuda where CUDA cannot run: the CLI, the server and the benches all
// come through here, so the error must say why (no CUDA in this build, or no device), for a model
// file and for synthetic:NAME, whose CUDA path skips the host weights altogether.
#include <gtest/gtest.h>

#include "engine/model/synthetic_model.h"
#include "engine/runtime/backend_factory.h"
#include "engine/runtime/loaded_engine.h"
#include "tests/support/test_paths.h"

namespace kvserve::testing {
namespace {

constexpr absl::string_view kNoDevice = "backend 'cuda': no CUDA device found";
constexpr absl::string_view kNoCudaBuild =
    "backend 'cuda': this build has no CUDA backend; configure with the cuda preset";

// Where a device is present LoadEngine would really load (16 GB for llama-3.1-8b): the tests
// ask the factory first, with empty weights that stop it before the GPU is touched.
class LoadEngineCudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto config = SyntheticModelConfig("stories260k");
    ASSERT_TRUE(config.ok()) << config.status();
    auto probe = CreateBackend("cuda", *config, ModelWeights{});
    ASSERT_FALSE(probe.ok());
    if (probe.status().message() != kNoDevice && probe.status().message() != kNoCudaBuild) {
      GTEST_SKIP() << "a CUDA device is present: " << probe.status();
    }
  }

  static void ExpectNoCuda(const absl::Status& s) {
    ASSERT_FALSE(s.ok());
    if (s.code() == absl::StatusCode::kFailedPrecondition) {
      EXPECT_EQ(s.message(), kNoDevice);
    } else {
      EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented) << s;
      EXPECT_EQ(s.message(), kNoCudaBuild);
    }
  }
};

TEST_F(LoadEngineCudaTest, SyntheticModelFailsWithTheCudaMessageNotAHostAllocation) {
  // The host path would build 32 GB of fp32 first and fail (or crawl) on its own terms.
  auto engine = LoadEngine({.model = "synthetic:llama-3.1-8b"}, "cuda", 0, 0.5);
  ExpectNoCuda(engine.status());
}

TEST_F(LoadEngineCudaTest, ModelFileFailsWithTheCudaMessage) {
  auto engine = LoadEngine(
      {.model = Stories260KModelPath(), .tokenizer = Stories260KTokenizerPath()}, "cuda");
  ExpectNoCuda(engine.status());
}

TEST_F(LoadEngineCudaTest, UnknownSyntheticNameIsReportedBeforeTheBackend) {
  auto engine = LoadEngine({.model = "synthetic:no-such-model"}, "cuda");
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(engine.status().message().find("unknown synthetic model 'no-such-model'"),
            absl::string_view::npos)
      << engine.status();
}

}  // namespace
}  // namespace kvserve::testing
