#include "tools/bench/gpu_attention_bench.h"

#include <cmath>
#include <numeric>
#include <vector>

#include "engine/base/status_macros.h"
#include "engine/runtime/cuda/cuda_status.h"
#include "engine/runtime/cuda/synthetic_fill.h"
#include "kernels/prefill_attention.h"
#include "tools/bench/gpu_bench_costs.h"
#include "tools/bench/gpu_buffer.h"
#include "tools/bench/gpu_timer.h"

namespace kvserve::bench {
namespace {

using cuda::CudaStatus;
using kernels::Bf16;

// One prompt length's operands: Q and the output as the backend lays them out (a row per token),
// K/V in pages 0, 1, 2, ... and the ragged-batch metadata for a single sequence.
struct AttentionOperands {
  GpuBuffer<Bf16> q, out, pages;
  GpuBuffer<int32_t> page_table, cu_seqlens, cache_positions, kv_lens;
};

absl::StatusOr<AttentionOperands> MakeOperands(const ModelConfig& c, int n, int page_size,
                                               cudaStream_t stream) {
  const kernels::PagedKvLayout layout{c.n_kv_heads, page_size, c.head_dim};
  const int num_pages = (n + page_size - 1) / page_size;
  std::vector<int32_t> table(num_pages), positions(n);
  std::iota(table.begin(), table.end(), 0);
  std::iota(positions.begin(), positions.end(), 0);
  const std::vector<int32_t> cu = {0, n}, lens = {n};

  auto q = GpuBuffer<Bf16>::Allocate(size_t(n) * c.q_dim());
  auto out = GpuBuffer<Bf16>::Allocate(size_t(n) * c.q_dim());
  auto pages = GpuBuffer<Bf16>::Allocate(size_t(num_pages) * layout.PageElements());
  auto t = GpuBuffer<int32_t>::Upload(table.data(), table.size());
  auto cs = GpuBuffer<int32_t>::Upload(cu.data(), cu.size());
  auto p = GpuBuffer<int32_t>::Upload(positions.data(), positions.size());
  auto l = GpuBuffer<int32_t>::Upload(lens.data(), lens.size());
  for (const absl::Status& s : {q.status(), out.status(), pages.status(), t.status(), cs.status(),
                                p.status(), l.status()}) {
    if (!s.ok()) return s;
  }
  // Values in [-1, 1): softmax sees a realistic spread, and no Inf/NaN path is timed.
  if (auto s = CudaStatus(cuda::LaunchSyntheticUniform(q->data(), q->count(), 1, 0, 1.0f, stream),
                          "fill q");
      !s.ok()) {
    return s;
  }
  if (auto s = CudaStatus(
          cuda::LaunchSyntheticUniform(pages->data(), pages->count(), 2, 0, 1.0f, stream),
          "fill kv");
      !s.ok()) {
    return s;
  }
  // The uploads went through the legacy stream, which `stream` (non-blocking) does not wait for.
  KVSERVE_RETURN_IF_ERROR(CudaStatus(cudaDeviceSynchronize(), "operand setup"));
  return AttentionOperands{*std::move(q),  *std::move(out), *std::move(pages), *std::move(t),
                           *std::move(cs), *std::move(p),   *std::move(l)};
}

}  // namespace

absl::Status RunPrefillAttentionBench(const ModelConfig& c, const GpuBenchOptions& o,
                                      cudaStream_t stream, const nlohmann::json& common) {
  for (int n : o.prefill_lengths) {
    if (n <= 0) continue;
    auto ops = MakeOperands(c, n, o.page_size, stream);
    if (!ops.ok()) return ops.status();
    const kernels::PrefillAttentionParams params{
        .q = ops->q.data(),
        .q_row_stride = c.q_dim(),
        .out = ops->out.data(),
        .out_row_stride = c.q_dim(),
        .batch = {.cu_seqlens = ops->cu_seqlens.data(),
                  .cache_positions = ops->cache_positions.data(),
                  .num_seqs = 1,
                  .total_tokens = n,
                  .max_seqlen = n},
        .kv_lens = ops->kv_lens.data(),
        .cache = {.pages = ops->pages.data(),
                  .layout = {c.n_kv_heads, o.page_size, c.head_dim},
                  .page_table = ops->page_table.data(),
                  .page_table_stride = (n + o.page_size - 1) / o.page_size},
        .n_heads = c.n_heads,
        .scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim))};
    auto ms = TimeOnStreamMs(stream, /*warmup=*/1, o.repeats, /*inner=*/1, [&] {
      return CudaStatus(kernels::LaunchPrefillAttention(params, stream), "prefill attention");
    });
    if (!ms.ok()) return ms.status();
    const double flops = CausalAttentionFlops(c, n);
    Emit(common, {{"bench", "prefill_attention"},
                  {"prompt_tokens", n},
                  {"layers", 1},
                  {"repeats", o.repeats},
                  {"ms", *ms},
                  {"flops", flops},
                  {"tflops", flops / (*ms * 1e9)}});
  }
  return absl::OkStatus();
}

}  // namespace kvserve::bench
