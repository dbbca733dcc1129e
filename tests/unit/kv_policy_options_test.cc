// KV policy options: every invalid value is rejected with a message naming the option; the
// policies that wait for issue #5 say so.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "absl/strings/str_cat.h"
#include "engine/base/field_violation.h"
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
  std::vector<std::pair<std::string, KvOptionValue>> set;
  std::string message;  // a fragment of the expected message, which starts with the option
};

TEST(KvPolicyOptionsTest, EveryInvalidOptionIsRejectedByName) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Invalid cases[] = {
      {"snapkv", {{"window", 0}}, "window must be >= 1, got 0"},
      {"fastkv", {{"window", -3}}, "window must be >= 1, got -3"},
      {"snapkv", {{"pool_kernel", 4}}, "pool_kernel must be odd and >= 1, got 4"},
      {"snapkv", {{"pool_kernel", 0}}, "pool_kernel must be odd and >= 1"},
      {"snapkv", {{"pool", static_cast<ScorePooling>(7)}}, "pool must be"},
      {"snapkv", {{"budget", -1}}, "budget must be >= 0"},
      {"snapkv", {{"retain_rate", 0.0f}}, "retain_rate must be in (0, 1], got 0"},
      {"fastkv", {{"retain_rate", 1.5f}}, "retain_rate must be in (0, 1]"},
      {"snapkv", {{"retain_rate", nan}}, "retain_rate must be in (0, 1]"},
      {"fastkv", {{"tsp_layer", 40}}, "tsp_layer must be in [0, 29]"},
      {"fastkv",
       {{"tsp_layer", 30}},
       "tsp_layer must be in [0, 29] (or -1: n_layers / 2 - 1), got 30"},
      {"fastkv", {{"tsp_layer", -2}}, "tsp_layer must be in [0, 29]"},
      {"fastkv", {{"tsp_rate", 1.5f}}, "tsp_rate must be in (0, 1], got 1.5"},
      {"fastkv", {{"tsp_rate", 0.0f}}, "tsp_rate must be in (0, 1]"},
      {"fastkv", {{"tsp_len", -1}}, "tsp_len must be >= 0"},
      {"freekv", {{"page_size", 0}}, "page_size must be >= 1, got 0"},
      {"quest", {{"page_size", -32}}, "page_size must be >= 1"},
      {"freekv", {{"sink", -1}}, "sink must be >= 0, got -1"},
      {"freekv", {{"recent", -1}}, "recent must be >= 0, got -1"},
      {"freekv", {{"tau", 1.5f}}, "tau must be in [-1, 1], got 1.5"},
      {"fastkv_freekv", {{"tau", -2.0f}}, "tau must be in [-1, 1]"},
      {"freekv", {{"tau", nan}}, "tau must be in [-1, 1]"},
      // Sizes beyond the context are refused before any policy is sized by them.
      {"freekv", {{"budget", 1 << 30}}, "budget must be <= the model's context"},
      {"snapkv", {{"window", 100000}}, "window must be <= the model's context"},
      {"fastkv", {{"tsp_len", 9000}}, "tsp_len must be <= the model's context"},
      {"quest", {{"page_size", 1 << 20}}, "page_size must be <= the model's"},
      {"freekv", {{"sink", 1 << 24}}, "sink must be <= the model's context"},
      {"fastkv_freekv", {{"recent", 8193}}, "recent must be <= the model's"},
      // FastKV's modes (research/fastkv.md §10.3).
      {"fastkv", {{"retain_rate", 0.3f}}, "retain_rate must be <= tsp_rate"},
      // The GPU budget holds sink, recent and at least one retrieved page.
      {"freekv", {{"budget", 1024}}, "budget must exceed sink + recent"},
      {"quest", {{"budget", 40}, {"sink", 0}, {"recent", 32}}, "budget must exceed sink + recent"},
      {"fastkv", {{"budget", 512}, {"tsp_len", 256}}, "budget must be <= tsp_len (256)"},
  };
  const ModelConfig config = SmolLm2Shape();
  for (const Invalid& c : cases) {
    KvPolicyOptions o = DefaultKvPolicyOptions(*ParseKvPolicyKind(c.policy));
    for (const auto& [name, value] : c.set) ASSERT_TRUE(SetKvOption(o, name, value).ok()) << name;
    const absl::Status s = ValidateKvPolicyOptions(o, config);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_EQ(std::string(s.message()).rfind(c.message, 0), 0u)
        << s.message() << "\nexpected: " << c.message;
    // The option is data, not only text: front ends rename it without parsing the message.
    const std::optional<FieldViolation> v = FieldViolationOf(s);
    ASSERT_TRUE(v.has_value()) << s;
    EXPECT_EQ(v->path, c.message.substr(0, c.message.find(' '))) << s;
    EXPECT_EQ(absl::StrCat(v->path, " ", v->problem), s.message());
    EXPECT_FALSE(CreateKvPolicy(o, config).ok());
  }
}

TEST(KvPolicyOptionsTest, ModeChecksApplyOnlyWhereTheyMatter) {
  const ModelConfig config = SmolLm2Shape();
  auto fastkv = [](int budget, float retain_rate, int tsp_len, int tsp_layer = -1,
                   float tsp_rate = 0.2f) {
    FastKvOptions o;
    o.budget = budget;
    o.retain_rate = retain_rate;
    o.tsp_len = tsp_len;
    o.tsp_layer = tsp_layer;
    o.tsp_rate = tsp_rate;
    return o;
  };
  SnapKvOptions snapkv;
  snapkv.budget = 512;
  snapkv.retain_rate = 0.5f;
  FastKvOptions avg = fastkv(0, 0.1f, 0, 0);
  avg.pool = ScorePooling::kAvg;
  FreeKvOptions freekv;
  freekv.sink = 0;
  freekv.recent = 0;
  freekv.tau = -1.0f;
  const KvPolicyOptions ok[] = {
      FullOptions{},
      snapkv,
      fastkv(256, 0.1f, 256),
      fastkv(64, 0.5f, 0),  // a constant budget: ρ unused
      fastkv(0, 0.5f, 100),
      fastkv(0, 0.2f, 0, 29, 0.2f),
      avg,
      freekv,
  };
  for (const KvPolicyOptions& o : ok) {
    EXPECT_TRUE(ValidateKvPolicyOptions(o, config).ok())
        << KvPolicyName(o) << ": " << ValidateKvPolicyOptions(o, config);
  }
}

TEST(KvPolicyOptionsTest, CreatesEveryPolicy) {
  const ModelConfig config = SmolLm2Shape();
  for (std::string_view name : KvPolicyNames()) {
    auto kind = ParseKvPolicyKind(name);
    ASSERT_TRUE(kind.ok()) << kind.status();
    EXPECT_EQ(KvPolicyName(*kind), name);
    auto p = CreateKvPolicy(DefaultKvPolicyOptions(*kind), config);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ((*p)->name(), name);
    // Scoring policies see the whole prompt at once; quest/freekv prefill as full does.
    const bool scores = name == "snapkv" || name == "fastkv" || name == "fastkv_freekv";
    EXPECT_EQ((*p)->needs_whole_prompt(), scores) << name;
    const bool tiered = name == "quest" || name == "freekv" || name == "fastkv_freekv";
    EXPECT_EQ(IsTieredKvPolicy(name), tiered);
    EXPECT_EQ(TieredOptionsOf(DefaultKvPolicyOptions(*kind)) != nullptr, tiered);
  }
  const absl::Status unknown = ParseKvPolicyKind("nope").status();
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldViolationOf(unknown)->path, "name");
  EXPECT_NE(unknown.message().find("'nope' is not a KV policy"), std::string::npos) << unknown;
}

TEST(KvPolicyOptionsTest, OptionsByNameBelongToTheirPolicies) {
  // Each policy has exactly its options (the proto messages and the --kv-* flags follow this).
  EXPECT_TRUE(KvOptionNames(KvPolicyKind::kFull).empty());
  EXPECT_EQ(
      KvOptionNames(KvPolicyKind::kSnapKv),
      (std::vector<std::string_view>{"window", "pool_kernel", "pool", "budget", "retain_rate"}));
  EXPECT_EQ(KvOptionNames(KvPolicyKind::kFastKv).size(), 8u);
  EXPECT_EQ(KvOptionNames(KvPolicyKind::kQuest),
            (std::vector<std::string_view>{"budget", "page_size", "sink", "recent"}));
  EXPECT_EQ(KvOptionNames(KvPolicyKind::kFreeKv).size(), 5u);
  EXPECT_EQ(KvOptionNames(KvPolicyKind::kFastKvFreeKv).size(), 11u);  // all but retain_rate

  KvPolicyOptions o = SnapKvOptions{};
  ASSERT_TRUE(SetKvOption(o, "window", 16).ok());
  EXPECT_EQ(std::get<SnapKvOptions>(o).window, 16);
  EXPECT_EQ(std::get<int>(*GetKvOption(o, "window")), 16);
  const absl::Status tau = SetKvOption(o, "tau", 0.5f);
  EXPECT_EQ(tau.message(), "tau is not an option of the snapkv policy");
  EXPECT_EQ(FieldViolationOf(tau)->path, "tau");
  EXPECT_FALSE(SetKvOption(o, "window", 0.5f).ok());  // a float for an int option
  EXPECT_FALSE(GetKvOption(o, "tau").has_value());
}

}  // namespace
}  // namespace kvserve
