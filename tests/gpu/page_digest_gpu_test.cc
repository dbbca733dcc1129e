// LaunchBuildPageDigests against its CPU twin (the CPU policy's BuildPageDigest), bit for bit:
// Quest's min/max and FreeKV's center ± mean deviation, pages listed out of order into scattered
// digest rows (one entry without a page), head_dim 64 and 128, page sizes 16 and 32.
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu_reference/page_digest.h"
#include "kernels/page_digest_build.h"
#include "tests/gpu/gpu_test_support.h"

namespace kvserve::kernels {
namespace {

using testing::DeviceBuffer;

// (head_dim, page_size, kind)
using DigestCase = std::tuple<int, int, PageDigestKind>;

class PageDigestGpuTest : public testing::GpuTestWithParam<DigestCase> {};

std::string Describe(const DigestCase& c) {
  const auto [head_dim, page_size, kind] = c;
  std::ostringstream name;
  name << "d" << head_dim << "_page" << page_size
       << (kind == PageDigestKind::kMinMax ? "_minmax" : "_centermad");
  return name.str();
}

std::vector<uint32_t> Bits(const std::vector<float>& v) {
  std::vector<uint32_t> bits(v.size());
  std::memcpy(bits.data(), v.data(), v.size() * sizeof(float));
  return bits;
}

TEST_P(PageDigestGpuTest, EqualsTheCpuDigestsBitForBit) {
  const auto [head_dim, page_size, kind] = GetParam();
  const PagedKvLayout l{.n_kv_heads = 3, .page_size = page_size, .head_dim = head_dim};
  const int arena_pages = 9;
  const int digest_rows = 12;
  std::mt19937 rng(head_dim * 3 + page_size);
  const std::vector<Bf16> arena = testing::RandomBf16(arena_pages * l.PageElements(), rng, 2.0f);
  // -1: an entry without a page, whose row (6) stays untouched.
  const std::vector<int32_t> src = {4, 0, -1, 8, 3, 7};
  const std::vector<int32_t> rows = {11, 2, 6, 0, 5, 9};
  const size_t floats = static_cast<size_t>(digest_rows) * l.n_kv_heads * 2 * head_dim;
  std::vector<float> expected(floats, -1.0f);
  DeviceBuffer<Bf16> d_arena(arena);
  DeviceBuffer<int32_t> d_src(src), d_rows(rows);
  DeviceBuffer<float> d_digests(expected);
  const PageDigestBuildParams device{.pages = d_arena.data(),
                                     .layout = l,
                                     .src_pages = d_src.data(),
                                     .digest_rows = d_rows.data(),
                                     .num_pages = static_cast<int>(src.size()),
                                     .kind = kind,
                                     .digests = d_digests.data()};
  ASSERT_CUDA_OK(LaunchBuildPageDigests(device, nullptr));
  reference::BuildPageDigests({.pages = arena.data(),
                               .layout = l,
                               .src_pages = src.data(),
                               .digest_rows = rows.data(),
                               .num_pages = static_cast<int>(src.size()),
                               .kind = kind,
                               .digests = expected.data()});
  EXPECT_EQ(Bits(d_digests.ToHost()), Bits(expected)) << Describe(GetParam());
  // hi >= lo everywhere written, and rows not listed untouched.
  for (size_t i = 0; i < rows.size(); ++i) {
    if (src[i] < 0) continue;
    const int r = rows[i];
    for (int h = 0; h < l.n_kv_heads; ++h) {
      const float* hi =
          expected.data() + (static_cast<size_t>(r) * l.n_kv_heads + h) * 2 * head_dim;
      for (int c = 0; c < head_dim; ++c) ASSERT_GE(hi[c], hi[head_dim + c]);
    }
  }
  EXPECT_EQ(expected[(static_cast<size_t>(1) * l.n_kv_heads) * 2 * head_dim], -1.0f);
  EXPECT_EQ(expected[(static_cast<size_t>(6) * l.n_kv_heads) * 2 * head_dim], -1.0f);
}

INSTANTIATE_TEST_SUITE_P(Shapes, PageDigestGpuTest,
                         ::testing::Combine(::testing::Values(64, 128), ::testing::Values(16, 32),
                                            ::testing::Values(PageDigestKind::kMinMax,
                                                              PageDigestKind::kCenterMad)),
                         [](const auto& info) { return Describe(info.param); });

}  // namespace
}  // namespace kvserve::kernels
