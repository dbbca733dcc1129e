// LaunchKvAppend against its CPU twin: new K/V rows of a ragged batch (cached prefixes, an empty
// chunk, chunks crossing pages) land in shuffled pages; every other slot keeps its bits.
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu_reference/kv_append.h"
#include "kernels/kv_append.h"
#include "tests/gpu/gpu_test_support.h"
#include "tests/gpu/paged_cache_fixture.h"

namespace kvserve::kernels {
namespace {

using testing::DeviceBuffer;

// (head_dim, page_size)
using AppendCase = std::tuple<int, int>;

class KvAppendGpuTest : public testing::GpuTestWithParam<AppendCase> {};

// The case as a name: test names (for --gtest_filter) and failure messages.
std::string Describe(const AppendCase& c) {
  const auto [head_dim, page_size] = c;
  std::ostringstream name;
  name << "d" << head_dim << "_page" << page_size;
  return name.str();
}

TEST_P(KvAppendGpuTest, WritesNewRowsIntoTheirPages) {
  const auto [head_dim, page_size] = GetParam();
  const int n_heads = 6;
  const int n_kv_heads = 3;
  const testing::HostRaggedBatch batch = testing::MakeRaggedBatch({{.cached = 0, .fresh = 37},
                                                                   {.cached = 5, .fresh = 0},
                                                                   {.cached = 17, .fresh = 1},
                                                                   {.cached = 40, .fresh = 33}});
  std::mt19937 rng(head_dim * page_size);
  testing::HostPagedCache cache = testing::MakeRandomPagedCache(
      {.n_kv_heads = n_kv_heads, .page_size = page_size, .head_dim = head_dim}, batch.kv_lens, rng);
  // K and V as the fused QKV projection lays them out: [q heads | k heads | v heads] per row.
  const int stride = (n_heads + 2 * n_kv_heads) * head_dim;
  const std::vector<Bf16> qkv =
      testing::RandomBf16(static_cast<size_t>(batch.total_tokens()) * stride, rng);
  const size_t k_at = static_cast<size_t>(n_heads) * head_dim;
  const size_t v_at = k_at + static_cast<size_t>(n_kv_heads) * head_dim;

  testing::DevicePagedCache d_cache(cache);
  DeviceBuffer<Bf16> d_qkv(qkv);
  DeviceBuffer<int32_t> d_cu(batch.cu_seqlens);
  DeviceBuffer<int32_t> d_positions(batch.cache_positions);
  ASSERT_CUDA_OK(LaunchKvAppend(d_qkv.data() + k_at, stride, d_qkv.data() + v_at, stride,
                                batch.View(d_cu.data(), d_positions.data()), d_cache.view,
                                nullptr));

  reference::KvAppend(qkv.data() + k_at, stride, qkv.data() + v_at, stride,
                      batch.View(batch.cu_seqlens.data(), batch.cache_positions.data()),
                      cache.View(cache.pages.data(), cache.page_table.data()));
  testing::ExpectBitsEqual(d_cache.pages.ToHost(), cache.pages, Describe(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Shapes, KvAppendGpuTest,
                         ::testing::Combine(::testing::Values(64, 128), ::testing::Values(16, 32)),
                         [](const auto& info) { return Describe(info.param); });

}  // namespace
}  // namespace kvserve::kernels
