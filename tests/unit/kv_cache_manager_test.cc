// KvCacheManager: pages bought in the backend's KV element size, page memory from the backend
// (none for a tier it keeps in an arena of its own), compaction and release through the manager,
// and the tiered policies' device budgets, which only the manager allocates.
#include "engine/kv/kv_cache_manager.h"

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <vector>

#include "engine/kv/budget_cache.h"
#include "tests/support/random_tensors.h"

namespace kvserve {
namespace {

ModelConfig TinyConfig() {
  ModelConfig c;
  c.dim = 16;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 4;
  c.vocab_size = 32;
  c.context_length = 2048;
  return c;
}

// A backend-like owner of page memory: host stores for the host tier, an arena of its own (no
// host memory) for the device tier, as the CUDA backend; counts what is out.
class ArenaBackendStores : public KvPageStoreProvider {
 public:
  KvPageStore* AcquireKvPageStore(KvTier tier, const KvPageShape& shape,
                                  int64_t max_pages) override {
    if (tier == KvTier::kDevice) return nullptr;
    stores_.push_back(std::make_unique<KvPageStore>(KvDtype::kF32, shape.floats(), max_pages));
    return stores_.back().get();
  }
  void ReleaseKvPageStore(KvPageStore* store) override {
    std::erase_if(stores_, [store](const auto& s) { return s.get() == store; });
  }
  size_t live() const { return stores_.size(); }

 private:
  std::vector<std::unique_ptr<KvPageStore>> stores_;
};

TEST(KvCacheManagerTest, DeviceBytesBuyPagesInTheBackendsElementSize) {
  const ModelConfig c = TinyConfig();
  const KvPageShape shape{.n_kv_heads = c.n_kv_heads, .page_size = 8, .head_dim = c.head_dim};
  const int64_t fp32_page = static_cast<int64_t>(shape.bytes());
  KvCacheManager fp32(
      c, {.page_size = 8, .device_bytes = 100 * fp32_page, .host_bytes = 10 * fp32_page});
  KvCacheManager bf16(c, {.page_size = 8,
                          .device_bytes = 100 * fp32_page,
                          .host_bytes = 10 * fp32_page,
                          .device_element_bytes = 2});
  KvCacheManager capped(c, {.page_size = 8,
                            .device_bytes = 100 * fp32_page,
                            .device_element_bytes = 2,
                            .device_page_capacity = 150});
  EXPECT_EQ(fp32.device_pages_total(), 100);
  EXPECT_EQ(bf16.device_pages_total(), 200);
  EXPECT_EQ(capped.device_pages_total(), 150);
  // The host tier is fp32 whatever the device's type.
  EXPECT_EQ(bf16.host_pages_total(), 10);
}

TEST(KvCacheManagerTest, PageMemoryComesFromTheBackendAndGoesBackAtTheEnd) {
  const ModelConfig c = TinyConfig();
  ArenaBackendStores backend;
  {
    KvCacheManager kv(c, {.page_size = 4, .device_bytes = 1 << 20, .host_bytes = 1 << 20},
                      &backend);
    EXPECT_EQ(backend.live(), 1u);  // the host tier's; the device tier lives in the arena
    auto seq = kv.Create(FullOptions{});
    ASSERT_TRUE(seq.ok()) << seq.status();
    // Device pages are ids only: the cache's tables grow without host memory behind them.
    ASSERT_TRUE(kv.Grow(**seq, 10, ChunkKind::kPrompt));
    EXPECT_EQ((*seq)->cache.page_table(0).size(), 3u);
    EXPECT_EQ(kv.device_pages_used(), 6);
    kv.Release(**seq);
    EXPECT_EQ(kv.device_pages_used(), 0);
  }
  EXPECT_EQ(backend.live(), 0u);
}

TEST(KvCacheManagerTest, RetainCompactsThroughTheManagerAndReleaseFreesEveryPage) {
  const ModelConfig c = TinyConfig();
  KvCacheManager kv(c, {.page_size = 4, .device_bytes = 1 << 20, .host_bytes = 1 << 20});
  auto seq = kv.Create(FullOptions{});
  ASSERT_TRUE(seq.ok()) << seq.status();
  SequenceKv& s = **seq;
  const int stride = c.n_kv_heads * c.head_dim;
  std::vector<float> rows(10 * stride);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<float>(i);
  ASSERT_TRUE(kv.Grow(s, 10, ChunkKind::kPrompt));
  for (int l = 0; l < c.n_layers; ++l) {
    ASSERT_TRUE(s.cache.Append(l, rows.data(), rows.data(), 10, stride));
  }
  EXPECT_EQ(kv.device_pages_used(), 6);
  // Each KV head keeps its own two rows of layer 1: one page instead of three.
  kv.Retain(s, 1, {{2, 9}, {0, 5}});
  EXPECT_EQ(s.cache.length(1), 2);
  EXPECT_EQ(s.cache.key_row(1, 0, 1)[0], rows[9 * stride]);
  EXPECT_EQ(s.cache.key_row(1, 1, 0)[0], rows[0 * stride + c.head_dim]);
  EXPECT_EQ(kv.device_pages_used(), 4);
  const KvStats stats = kv.Release(s);
  EXPECT_EQ(stats.policy, "full");
  EXPECT_EQ(stats.kept_tokens, (std::vector<int>{10, 2}));
  EXPECT_EQ(kv.device_pages_used(), 0);
  EXPECT_EQ(s.policy, nullptr);
}

TEST(KvCacheManagerTest, CheckFitsNamesThePoolARequestCanNeverFit) {
  const ModelConfig c = TinyConfig();
  const KvPageShape shape{.n_kv_heads = c.n_kv_heads, .page_size = 4, .head_dim = c.head_dim};
  const int64_t page = static_cast<int64_t>(shape.bytes());
  KvCacheManager kv(c, {.page_size = 4, .device_bytes = 8 * page, .host_bytes = 4 * page});
  EXPECT_TRUE(kv.CheckFits(FullOptions{}, 16).ok());  // 4 pages a layer, 8 in all
  EXPECT_EQ(kv.CheckFits(FullOptions{}, 17).code(), absl::StatusCode::kResourceExhausted);
  const absl::Status host = kv.CheckFits(QuestOptions{{.page_size = 4}}, 16);
  EXPECT_EQ(host.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(host.message().find("host tier"), std::string::npos) << host;
  EXPECT_EQ(kv.CheckFits(QuestOptions{{.page_size = 8}}, 4).code(),
            absl::StatusCode::kInvalidArgument);
}

// Quest over pages of 4 tokens with a budget of 6 slots (1 sink, 2 recent, 3 retrieved).
QuestOptions SmallQuest() {
  return QuestOptions{{.budget = 24, .page_size = 4, .sink = 4, .recent = 8}};
}

// Appends `n` random rows to every layer of `s`'s cache, as a backend does during a step.
void AppendRows(SequenceKv& s, const ModelConfig& c, int n, std::mt19937& rng) {
  const std::vector<float> rows = testing::RandomNormal(n * c.kv_dim(), rng);
  for (int l = 0; l < c.n_layers; ++l) {
    ASSERT_TRUE(s.cache.Append(l, rows.data(), rows.data(), n, c.kv_dim()));
  }
}

// Whether `s`'s policy attends layer 0 of a decode step sparsely (after the step's append).
bool AttendsSparsely(SequenceKv& s, const ModelConfig& c, std::mt19937& rng) {
  const std::vector<float> q = testing::RandomNormal(c.q_dim(), rng);
  s.policy->BeginDecodeLayer(0);
  const bool sparse = s.policy->PrepareDecodeAttention(0, q.data(), s.cache);
  s.policy->FinishDecodeAttention(0, q.data(), s.cache);
  return sparse;
}

TEST(KvCacheManagerTest, ATieredBudgetIsTakenOnceTheCacheOutgrowsItsSlotsAndGoesBackAtTheEnd) {
  const ModelConfig c = TinyConfig();
  std::mt19937 rng(7);
  KvCacheManager kv(c, {.page_size = 4, .device_bytes = 1 << 20, .host_bytes = 1 << 20});
  auto seq = kv.Create(SmallQuest());
  ASSERT_TRUE(seq.ok()) << seq.status();
  SequenceKv& s = **seq;
  BudgetCache* budget = s.policy->device_budget();
  ASSERT_NE(budget, nullptr);
  // A prompt longer than the budget takes host pages only: the budget serves decode steps.
  ASSERT_TRUE(kv.Grow(s, 30, ChunkKind::kPrompt));
  AppendRows(s, c, 30, rng);
  EXPECT_EQ(kv.host_pages_used(), 2 * 8);
  EXPECT_EQ(kv.device_pages_used(), 0);
  EXPECT_EQ(budget->state(), BudgetCache::State::kUnallocated);
  // The first decode step: 31 tokens are 8 pages > 6 slots, so every layer's slots, at once.
  ASSERT_TRUE(kv.Grow(s, 1, ChunkKind::kDecode));
  EXPECT_EQ(budget->state(), BudgetCache::State::kAllocated);
  EXPECT_EQ(kv.device_pages_used(), 2 * 6);
  AppendRows(s, c, 1, rng);
  EXPECT_TRUE(AttendsSparsely(s, c, rng));
  ASSERT_TRUE(kv.Grow(s, 1, ChunkKind::kDecode));  // taken once
  EXPECT_EQ(kv.device_pages_used(), 2 * 6);
  // Preemption starts over with a fresh policy and no budget; the end of the sequence frees it.
  ASSERT_TRUE(kv.Reset(s, SmallQuest()).ok());
  EXPECT_EQ(kv.device_pages_used(), 0);
  EXPECT_EQ(kv.host_pages_used(), 0);
  ASSERT_TRUE(kv.Grow(s, 30, ChunkKind::kPrompt));
  AppendRows(s, c, 30, rng);
  ASSERT_TRUE(kv.Grow(s, 1, ChunkKind::kDecode));
  EXPECT_EQ(kv.device_pages_used(), 2 * 6);
  kv.Release(s);
  EXPECT_EQ(kv.device_pages_used(), 0);
  EXPECT_EQ(kv.host_pages_used(), 0);
}

TEST(KvCacheManagerTest, ACacheWithinTheBudgetTakesNoDeviceSlots) {
  const ModelConfig c = TinyConfig();
  std::mt19937 rng(8);
  KvCacheManager kv(c, {.page_size = 4, .device_bytes = 1 << 20, .host_bytes = 1 << 20});
  auto seq = kv.Create(SmallQuest());
  ASSERT_TRUE(seq.ok()) << seq.status();
  SequenceKv& s = **seq;
  ASSERT_TRUE(kv.Grow(s, 20, ChunkKind::kPrompt));
  AppendRows(s, c, 20, rng);
  for (int t = 0; t < 4; ++t) {  // up to 24 tokens: 6 pages, the budget's 6 slots
    ASSERT_TRUE(kv.Grow(s, 1, ChunkKind::kDecode));
    AppendRows(s, c, 1, rng);
    EXPECT_FALSE(AttendsSparsely(s, c, rng)) << "token " << 21 + t;
  }
  EXPECT_EQ(kv.device_pages_used(), 0);
  EXPECT_EQ(s.policy->device_budget()->state(), BudgetCache::State::kUnallocated);
}

TEST(KvCacheManagerTest, ADevicePoolTooShortForTheBudgetLeavesTheSequenceDenseForGood) {
  const ModelConfig c = TinyConfig();
  std::mt19937 rng(9);
  const KvPageShape shape{.n_kv_heads = c.n_kv_heads, .page_size = 4, .head_dim = c.head_dim};
  const int64_t page = static_cast<int64_t>(shape.bytes());
  // 12 device pages: exactly one budget, but a full sequence holds 4 of them first.
  KvCacheManager kv(c, {.page_size = 4, .device_bytes = 12 * page, .host_bytes = 1 << 20});
  auto full = kv.Create(FullOptions{});
  ASSERT_TRUE(full.ok()) << full.status();
  ASSERT_TRUE(kv.Grow(**full, 8, ChunkKind::kPrompt));
  auto seq = kv.Create(SmallQuest());
  ASSERT_TRUE(seq.ok()) << seq.status();
  SequenceKv& s = **seq;
  ASSERT_TRUE(kv.Grow(s, 30, ChunkKind::kPrompt));
  AppendRows(s, c, 30, rng);
  // Short of device pages, the step still goes on (the host tier holds the cache), densely.
  ASSERT_TRUE(kv.Grow(s, 1, ChunkKind::kDecode));
  EXPECT_EQ(s.policy->device_budget()->state(), BudgetCache::State::kShort);
  EXPECT_EQ(kv.device_pages_used(), 4);
  AppendRows(s, c, 1, rng);
  EXPECT_FALSE(AttendsSparsely(s, c, rng));
  // Room made later does not switch it to sparse mid-sequence: it was asked once.
  kv.Release(**full);
  ASSERT_TRUE(kv.Grow(s, 1, ChunkKind::kDecode));
  AppendRows(s, c, 1, rng);
  EXPECT_FALSE(AttendsSparsely(s, c, rng));
  EXPECT_EQ(kv.device_pages_used(), 0);
  // A fresh sequence gets the room.
  ASSERT_TRUE(kv.Reset(s, SmallQuest()).ok());
  ASSERT_TRUE(kv.Grow(s, 30, ChunkKind::kPrompt));
  AppendRows(s, c, 30, rng);
  ASSERT_TRUE(kv.Grow(s, 1, ChunkKind::kDecode));
  EXPECT_EQ(kv.device_pages_used(), 12);
  kv.Release(s);
  EXPECT_EQ(kv.device_pages_used(), 0);
}

}  // namespace
}  // namespace kvserve
