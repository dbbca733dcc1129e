// KV policy options: every invalid value is rejected with a message naming the option; the
// policies that wait for issue #5 say so.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "absl/strings/str_cat.h"
#include "engine/kv/kv_policy.h"
#include "engine/model/synthetic_model.h"

namespace kvserve {
namespace {

ModelConfig SmolLm2Shape() {  // 30 layers
  auto c = SyntheticModelConfig("smollm2-135m");
  EXPECT_TRUE(c.ok());
  return *c;
}

struct Invalid {
  std::string policy;
  std::function<void(KvPolicyOptions&)> set;
  std::string message;  // a fragment of the expected message
};

TEST(KvPolicyOptionsTest, EveryInvalidOptionIsRejectedByName) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Invalid cases[] = {
      {"nope", [](auto&) {}, "kv policy 'nope' is unknown"},
      {"snapkv", [](auto& o) { o.window = 0; }, "kv window must be >= 1, got 0"},
      {"fastkv", [](auto& o) { o.window = -3; }, "kv window must be >= 1, got -3"},
      {"snapkv", [](auto& o) { o.pool_kernel = 4; }, "kv pool_kernel must be odd and >= 1, got 4"},
      {"snapkv", [](auto& o) { o.pool_kernel = 0; }, "kv pool_kernel must be odd and >= 1"},
      {"snapkv", [](auto& o) { o.pool = static_cast<ScorePooling>(7); }, "kv pool must be"},
      {"snapkv", [](auto& o) { o.budget = -1; }, "kv budget must be >= 0"},
      {"snapkv", [](auto& o) { o.retain_rate = 0.0f; }, "kv retain_rate must be in (0, 1], got 0"},
      {"fastkv", [](auto& o) { o.retain_rate = 1.5f; }, "kv retain_rate must be in (0, 1]"},
      {"snapkv", [=](auto& o) { o.retain_rate = nan; }, "kv retain_rate must be in (0, 1]"},
      {"fastkv", [](auto& o) { o.tsp_layer = 40; }, "kv tsp_layer must be in [0, 29]"},
      {"fastkv", [](auto& o) { o.tsp_layer = 30; }, "got 30"},
      {"fastkv", [](auto& o) { o.tsp_layer = -2; }, "kv tsp_layer must be in [0, 29]"},
      {"fastkv", [](auto& o) { o.tsp_rate = 1.5f; }, "kv tsp_rate must be in (0, 1], got 1.5"},
      {"fastkv", [](auto& o) { o.tsp_rate = 0.0f; }, "kv tsp_rate must be in (0, 1]"},
      {"fastkv", [](auto& o) { o.tsp_len = -1; }, "kv tsp_len must be >= 0"},
      {"freekv", [](auto& o) { o.page_size = 0; }, "kv page_size must be >= 1, got 0"},
      {"quest", [](auto& o) { o.page_size = -32; }, "kv page_size must be >= 1"},
      {"freekv", [](auto& o) { o.sink = -1; }, "kv sink must be >= 0, got -1"},
      {"freekv", [](auto& o) { o.recent = -1; }, "kv recent must be >= 0, got -1"},
      {"freekv", [](auto& o) { o.tau = 1.5f; }, "kv tau must be in [-1, 1], got 1.5"},
      {"fastkv_freekv", [](auto& o) { o.tau = -2.0f; }, "kv tau must be in [-1, 1]"},
      {"freekv", [=](auto& o) { o.tau = nan; }, "kv tau must be in [-1, 1]"},
      // Sizes beyond the context are refused before any policy is sized by them.
      {"freekv", [](auto& o) { o.budget = 1 << 30; }, "kv budget must be <= the model's context"},
      {"snapkv", [](auto& o) { o.window = 100000; }, "kv window must be <= the model's context"},
      {"fastkv", [](auto& o) { o.tsp_len = 9000; }, "kv tsp_len must be <= the model's context"},
      {"quest", [](auto& o) { o.page_size = 1 << 20; }, "kv page_size must be <= the model's"},
      {"freekv", [](auto& o) { o.sink = 1 << 24; }, "kv sink must be <= the model's context"},
      {"fastkv_freekv", [](auto& o) { o.recent = 8193; }, "kv recent must be <= the model's"},
      // FastKV's modes (research/fastkv.md §10.3).
      {"fastkv", [](auto& o) { o.retain_rate = 0.3f; }, "kv retain_rate must be <= tsp_rate"},
      // The GPU budget holds sink, recent and at least one retrieved page.
      {"freekv", [](auto& o) { o.budget = 1024; }, "kv budget must exceed sink + recent"},
      {"quest",
       [](auto& o) {
         o.budget = 40;
         o.sink = 0;
         o.recent = 32;
       },
       "kv budget must exceed sink + recent"},
      {"fastkv",
       [](auto& o) {
         o.budget = 512;
         o.tsp_len = 256;
       },
       "kv budget must be <= tsp_len (256)"},
  };
  const ModelConfig config = SmolLm2Shape();
  for (const Invalid& c : cases) {
    KvPolicyOptions o{.name = c.policy};
    c.set(o);
    const absl::Status s = ValidateKvPolicyOptions(o, config);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_NE(std::string(s.message()).find(c.message), std::string::npos)
        << s.message() << "\nexpected: " << c.message;
    EXPECT_EQ(std::string(s.message()).rfind("kv ", 0), 0u) << s.message();
    EXPECT_FALSE(CreateKvPolicy(o, config).ok());
  }
}

TEST(KvPolicyOptionsTest, ModeChecksApplyOnlyWhereTheyMatter) {
  const ModelConfig config = SmolLm2Shape();
  const KvPolicyOptions ok[] = {
      {.name = "full"},
      {.name = "snapkv", .budget = 512, .retain_rate = 0.5f, .tsp_len = 256},
      {.name = "fastkv", .budget = 256, .tsp_len = 256},
      {.name = "fastkv", .budget = 64, .retain_rate = 0.5f},  // a constant budget: ρ unused
      {.name = "fastkv", .retain_rate = 0.5f, .tsp_len = 100},
      {.name = "fastkv", .retain_rate = 0.2f, .tsp_layer = 29, .tsp_rate = 0.2f},
      {.name = "fastkv", .pool = ScorePooling::kAvg, .tsp_layer = 0},
      {.name = "freekv", .sink = 0, .recent = 0, .tau = -1.0f},
  };
  for (const KvPolicyOptions& o : ok) {
    EXPECT_TRUE(ValidateKvPolicyOptions(o, config).ok())
        << o.name << ": " << ValidateKvPolicyOptions(o, config);
  }
}

TEST(KvPolicyOptionsTest, CreatesEveryPolicy) {
  const ModelConfig config = SmolLm2Shape();
  for (std::string_view name : KvPolicyNames()) {
    auto p = CreateKvPolicy({.name = std::string(name)}, config);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ((*p)->name(), name);
    // Scoring policies see the whole prompt at once; quest/freekv prefill as full does.
    const bool scores = name == "snapkv" || name == "fastkv" || name == "fastkv_freekv";
    EXPECT_EQ((*p)->needs_whole_prompt(), scores) << name;
    EXPECT_EQ(IsTieredKvPolicy(name),
              name == "quest" || name == "freekv" || name == "fastkv_freekv");
  }
}

}  // namespace
}  // namespace kvserve
