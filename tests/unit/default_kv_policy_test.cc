// The serving default policy (--default-kv-policy) resolved before the server serves: unknown
// names and options the model cannot take are refused with a message naming them.
#include "engine/runtime/default_kv_policy.h"

#include <gtest/gtest.h>

#include <variant>

#include "tests/support/model_fixtures.h"

namespace kvserve::testing {
namespace {

TEST(DefaultKvPolicyTest, TieredPoliciesTakeTheServersPageSize) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  auto full = ResolveDefaultKvPolicy("full", 16, *m.backend);
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(KindOf(*full), KvPolicyKind::kFull);
  for (const char* name : {"quest", "freekv", "fastkv_freekv"}) {
    auto tiered = ResolveDefaultKvPolicy(name, 16, *m.backend);
    ASSERT_TRUE(tiered.ok()) << name << ": " << tiered.status();
    EXPECT_EQ(KvPolicyName(*tiered), name);
    ASSERT_NE(TieredOptionsOf(*tiered), nullptr) << name;
    EXPECT_EQ(TieredOptionsOf(*tiered)->page_size, 16) << name;
  }
}

TEST(DefaultKvPolicyTest, AnUnknownNameOrAPageBeyondTheContextIsInvalid) {
  CpuModel m = LoadStories260K();
  ASSERT_NE(m.backend, nullptr);
  auto unknown = ResolveDefaultKvPolicy("magic", 16, *m.backend);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("magic"), std::string_view::npos) << unknown.status();
  // Stories260K holds 512 tokens: a tiered policy cannot page it by 1024.
  auto page = ResolveDefaultKvPolicy("freekv", 1024, *m.backend);
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(page.status().message().find("page_size"), std::string_view::npos) << page.status();
  // Dense policies have no pages of their own: the same page size is no concern of theirs.
  EXPECT_TRUE(ResolveDefaultKvPolicy("snapkv", 1024, *m.backend).ok());
}

}  // namespace
}  // namespace kvserve::testing
