// LaunchSparseDecodeAttention against its CPU twin: each (sequence, KV head) over its own page
// list (pages in any order, a partial last page, an empty list), with the planner's split, a split
// per tile and none; and, with each sequence's own pages listed in order, bit for bit the dense
// decode kernel's output (a budget covering the context attends as `full` does).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu_reference/sparse_decode_attention.h"
#include "kernels/decode_attention.h"
#include "kernels/sparse_decode_attention.h"
#include "tests/gpu/attention_tolerance.h"
#include "tests/gpu/gpu_test_support.h"
#include "tests/gpu/paged_cache_fixture.h"

namespace kvserve::kernels {
namespace {

using testing::DeviceBuffer;

// (head_dim, page_size, group)
using SparseCase = std::tuple<int, int, int>;

class SparseDecodeAttentionGpuTest : public testing::GpuTestWithParam<SparseCase> {};

std::string Describe(const SparseCase& c) {
  const auto [head_dim, page_size, group] = c;
  std::ostringstream name;
  name << "d" << head_dim << "_page" << page_size << "_group" << group;
  return name.str();
}

int SmCount() {
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  return sms;
}

struct HostLists {
  std::vector<int32_t> counts, pages, rows;
  int capacity = 0;
  int max_count = 0;
  PageListView View(const int32_t* c, const int32_t* p, const int32_t* r) const {
    return {.counts = c, .pages = p, .rows = r, .capacity = capacity};
  }
};

// Each unit's list: its sequence's pages, all in order (`all`) or a shuffled subset, with
// sequence 1's KV head 0 empty when not `all`.
HostLists MakeLists(const testing::HostPagedCache& cache, const std::vector<int32_t>& kv_lens,
                    int n_kv, bool all, std::mt19937& rng) {
  HostLists l;
  const int p = cache.layout.page_size;
  l.capacity = cache.page_table_stride;
  const int units = static_cast<int>(kv_lens.size()) * n_kv;
  l.counts.assign(units, 0);
  l.pages.assign(static_cast<size_t>(units) * l.capacity, -1);
  l.rows.assign(l.pages.size(), -1);
  for (int u = 0; u < units; ++u) {
    const int seq = u / n_kv;
    const int n_pages = (kv_lens[seq] + p - 1) / p;
    std::vector<int> chosen(n_pages);
    std::iota(chosen.begin(), chosen.end(), 0);
    if (!all) {
      std::shuffle(chosen.begin(), chosen.end(), rng);
      chosen.resize(u == n_kv ? 0 : std::max(1, n_pages * 2 / 3));
    }
    for (int j : chosen) {
      const size_t at = static_cast<size_t>(u) * l.capacity + l.counts[u]++;
      l.pages[at] = cache.page_table[static_cast<size_t>(seq) * cache.page_table_stride + j];
      l.rows[at] = std::min(p, kv_lens[seq] - j * p);
    }
    l.max_count = std::max(l.max_count, l.counts[u]);
  }
  return l;
}

TEST_P(SparseDecodeAttentionGpuTest, MatchesTwinAndTheDenseKernel) {
  const auto [head_dim, page_size, group] = GetParam();
  const int n_kv = 2;
  const int n_heads = n_kv * group;
  const std::vector<int32_t> kv_lens = {1, 300, 1100, 65};
  const int num_seqs = static_cast<int>(kv_lens.size());
  std::mt19937 rng(head_dim * 100 + page_size * 10 + group);
  const testing::HostPagedCache cache = testing::MakeRandomPagedCache(
      {.n_kv_heads = n_kv, .page_size = page_size, .head_dim = head_dim}, kv_lens, rng);
  const int q_stride = n_heads * head_dim + 16;
  const int out_stride = n_heads * head_dim;
  const std::vector<Bf16> q = testing::RandomBf16(static_cast<size_t>(num_seqs) * q_stride, rng);
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  testing::DevicePagedCache d_cache(cache);
  DeviceBuffer<Bf16> d_q(q);

  for (const bool all : {false, true}) {
    const HostLists lists = MakeLists(cache, kv_lens, n_kv, all, rng);
    const int max_keys = lists.max_count * page_size;
    SparseDecodeAttentionParams params{
        .q = q.data(),
        .q_row_stride = q_stride,
        .out_row_stride = out_stride,
        .num_seqs = num_seqs,
        .n_heads = n_heads,
        .pages = cache.pages.data(),
        .layout = cache.layout,
        .lists = lists.View(lists.counts.data(), lists.pages.data(), lists.rows.data()),
        .max_list_pages = lists.max_count,
        .scale = scale};
    std::vector<Bf16> expected(static_cast<size_t>(num_seqs) * out_stride);
    params.out = expected.data();
    reference::SparseDecodeAttention(params);

    DeviceBuffer<int32_t> d_counts(lists.counts), d_pages(lists.pages), d_rows(lists.rows);
    params.q = d_q.data();
    params.pages = d_cache.pages.data();
    params.lists = lists.View(d_counts.data(), d_pages.data(), d_rows.data());
    const int tiles = (max_keys + kDecodeTileKeys - 1) / kDecodeTileKeys;
    const std::vector<DecodeSplitPlan> plans = {
        PlanDecodeSplits(num_seqs, n_kv, max_keys, SmCount()),
        {.num_splits = tiles, .split_len = kDecodeTileKeys},
        {.num_splits = 1, .split_len = tiles * kDecodeTileKeys}};
    for (const DecodeSplitPlan& plan : plans) {
      const std::string at = Describe(GetParam()) + (all ? "_all" : "_subset") + "_splits" +
                             std::to_string(plan.num_splits);
      DeviceBuffer<float> d_workspace(
          std::max<size_t>(1, DecodeWorkspaceBytes(plan, num_seqs, n_heads, head_dim) / 4));
      DeviceBuffer<Bf16> d_out(expected.size());
      params.out = d_out.data();
      ASSERT_CUDA_OK(LaunchSparseDecodeAttention(params, plan, d_workspace.data(), nullptr));
      const std::vector<Bf16> out = d_out.ToHost();
      testing::ExpectAllNear(out, expected, testing::kAttentionAtol, testing::kAttentionRtol, at);
      if (!all) continue;
      // Every page in order: the dense kernel's computation, key for key.
      DeviceBuffer<int32_t> d_lens(kv_lens);
      DeviceBuffer<Bf16> d_dense(expected.size());
      const DecodeAttentionParams dense{.q = d_q.data(),
                                        .q_row_stride = q_stride,
                                        .out = d_dense.data(),
                                        .out_row_stride = out_stride,
                                        .kv_lens = d_lens.data(),
                                        .num_seqs = num_seqs,
                                        .max_kv_len = max_keys,
                                        .cache = d_cache.view,
                                        .n_heads = n_heads,
                                        .scale = scale};
      ASSERT_CUDA_OK(LaunchDecodeAttention(dense, plan, d_workspace.data(), nullptr));
      testing::ExpectBitsEqual(out, d_dense.ToHost(), at + " vs dense");
    }
  }
}

class SparseDecodeAttentionShapeTest : public testing::GpuTest {};

TEST_F(SparseDecodeAttentionShapeTest, RefusesAListLongerThanItsCapacity) {
  SparseDecodeAttentionParams params{.q_row_stride = 128,
                                     .num_seqs = 1,
                                     .n_heads = 2,
                                     .layout = {.n_kv_heads = 1, .page_size = 16, .head_dim = 64},
                                     .lists = {.capacity = 2},
                                     .max_list_pages = 3};
  EXPECT_EQ(
      LaunchSparseDecodeAttention(params, {.num_splits = 1, .split_len = 64}, nullptr, nullptr),
      cudaErrorInvalidValue);
}

INSTANTIATE_TEST_SUITE_P(Shapes, SparseDecodeAttentionGpuTest,
                         ::testing::Combine(::testing::Values(64, 128), ::testing::Values(16, 32),
                                            ::testing::Values(1, 4, 8)),
                         [](const auto& info) { return Describe(info.param); });

}  // namespace
}  // namespace kvserve::kernels
