// KvCacheManager: pages bought in the backend's KV element size, page memory from the backend
// (none for a tier it keeps in an arena of its own), compaction and release through the manager.
#include "engine/kv/kv_cache_manager.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

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
    stores_.push_back(std::make_unique<KvPageStore>(shape.floats(), max_pages));
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
    ASSERT_TRUE(kv.Grow(**seq, 10));
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
  ASSERT_TRUE(kv.Grow(s, 10));
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

}  // namespace
}  // namespace kvserve
