#include "tools/bench/gpu_gemm_check.h"

#include <cublas_v2.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/runtime/cuda/cublaslt_gemm.h"
#include "engine/runtime/cuda/cuda_status.h"
#include "engine/runtime/cuda/synthetic_fill.h"
#include "tools/bench/gpu_buffer.h"
#include "tools/bench/gpu_timer.h"

namespace kvserve::bench {
namespace {

using cuda::CudaStatus;
using kernels::Bf16;

struct GemmShape {
  std::string op;
  int rows = 0, out = 0, in = 0;
  bool fp32_out = false;  // the LM head's logits
};

std::vector<GemmShape> Shapes(const ModelConfig& c, const GpuBenchOptions& o) {
  std::set<int> rows(o.prefill_lengths.begin(), o.prefill_lengths.end());
  rows.insert(o.decode_batches.begin(), o.decode_batches.end());
  std::vector<GemmShape> shapes;
  for (int r : rows) {
    if (r <= 0) continue;
    // The backend's fused projections: Q/K/V in one GEMM, gate and up in one.
    shapes.push_back({"qkv", r, c.q_dim() + 2 * c.kv_dim(), c.dim});
    shapes.push_back({"o", r, c.dim, c.q_dim()});
    shapes.push_back({"gate_up", r, 2 * c.ffn_dim, c.dim});
    shapes.push_back({"down", r, c.dim, c.ffn_dim});
  }
  for (int r : o.decode_batches) {
    if (r > 0) shapes.push_back({"lm_head", r, c.vocab_size, c.dim, true});
  }
  return shapes;
}

absl::Status BlasStatus(cublasStatus_t status, absl::string_view what) {
  if (status == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("cuBLAS ", what, " failed with status ", static_cast<int>(status)));
}

// A cuBLAS handle bound to `stream`, given a workspace as large as the backend's wrapper gets,
// so neither side wins by scratch alone.
class BlasHandle {
 public:
  ~BlasHandle() {
    if (handle_ != nullptr) cublasDestroy(handle_);
  }
  absl::Status Init(cudaStream_t stream, void* workspace, size_t bytes) {
    KVSERVE_RETURN_IF_ERROR(BlasStatus(cublasCreate(&handle_), "create"));
    KVSERVE_RETURN_IF_ERROR(BlasStatus(cublasSetStream(handle_, stream), "set stream"));
    return BlasStatus(cublasSetWorkspace(handle_, workspace, bytes), "set workspace");
  }
  cublasHandle_t get() const { return handle_; }

 private:
  cublasHandle_t handle_ = nullptr;
};

// y[rows][out] = x[rows][in] · w[out][in]ᵀ, all row-major, as column-major cuBLAS sees it:
// yᵀ (out × rows) = op_T(w read as in × out) · (x read as in × rows). fp32 accumulation.
absl::Status PlainGemm(cublasHandle_t h, const GemmShape& s, const Bf16* x, const Bf16* w,
                       void* y) {
  const float alpha = 1.0f, beta = 0.0f;
  return BlasStatus(
      cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, s.out, s.rows, s.in, &alpha, w, CUDA_R_16BF, s.in,
                   x, CUDA_R_16BF, s.in, &beta, y, s.fp32_out ? CUDA_R_32F : CUDA_R_16BF, s.out,
                   CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
      "GemmEx");
}

// Runs per timed sample so that one sample is about a millisecond: decode-sized GEMMs take
// microseconds, below what a pair of events resolves well.
int InnerRuns(const GemmShape& s) {
  const double flops = 2.0 * s.rows * s.out * static_cast<double>(s.in);
  const double bytes = 2.0 * (static_cast<double>(s.out) * s.in + double{1} * s.rows * s.in);
  const double est_ms = std::max(flops / 500e9, bytes / 2.5e9);  // ~500 TFLOP/s, ~2.5 TB/s
  return static_cast<int>(std::clamp(std::ceil(1.0 / std::max(est_ms, 1e-6)), 1.0, 200.0));
}

}  // namespace

absl::Status RunGemmCheck(const ModelConfig& c, const GpuBenchOptions& o, cudaStream_t stream,
                          const nlohmann::json& common) {
  auto lt_workspace = GpuBuffer<char>::Allocate(cuda::kCublasLtWorkspaceBytes);
  auto blas_workspace = GpuBuffer<char>::Allocate(cuda::kCublasLtWorkspaceBytes);
  if (!lt_workspace.ok()) return lt_workspace.status();
  if (!blas_workspace.ok()) return blas_workspace.status();
  auto lt = cuda::CublasLtGemm::Create(lt_workspace->data(), lt_workspace->count());
  if (!lt.ok()) return lt.status();
  BlasHandle blas;
  if (auto s = blas.Init(stream, blas_workspace->data(), blas_workspace->count()); !s.ok()) {
    return s;
  }

  for (const GemmShape& s : Shapes(c, o)) {
    auto x = GpuBuffer<Bf16>::Allocate(size_t(s.rows) * s.in);
    auto w = GpuBuffer<Bf16>::Allocate(size_t(s.out) * s.in);
    // Room for either output type; the bf16 case uses the first half.
    auto y = GpuBuffer<float>::Allocate(size_t(s.rows) * s.out);
    for (const absl::Status& st : {x.status(), w.status(), y.status()}) {
      if (!st.ok()) return st;
    }
    const float w_scale = 1.0f / std::sqrt(static_cast<float>(s.in));
    if (auto st = CudaStatus(
            cuda::LaunchSyntheticUniform(x->data(), x->count(), 3, 0, 1.0f, stream), "fill x");
        !st.ok()) {
      return st;
    }
    if (auto st = CudaStatus(
            cuda::LaunchSyntheticUniform(w->data(), w->count(), 4, 0, w_scale, stream), "fill w");
        !st.ok()) {
      return st;
    }
    auto ours = [&]() -> absl::Status {
      if (s.fp32_out)
        return (*lt)->Run(x->data(), w->data(), y->data(), s.rows, s.out, s.in, stream);
      return (*lt)->Run(x->data(), w->data(), reinterpret_cast<Bf16*>(y->data()), s.rows, s.out,
                        s.in, stream);
    };
    auto theirs = [&] { return PlainGemm(blas.get(), s, x->data(), w->data(), y->data()); };
    const int inner = InnerRuns(s);
    auto ours_ms = TimeOnStreamMs(stream, /*warmup=*/3, o.repeats, inner, ours);
    if (!ours_ms.ok()) return ours_ms.status();
    auto theirs_ms = TimeOnStreamMs(stream, /*warmup=*/3, o.repeats, inner, theirs);
    if (!theirs_ms.ok()) return theirs_ms.status();
    const double flops = 2.0 * s.rows * s.out * static_cast<double>(s.in);
    Emit(common, {{"bench", "gemm"},
                  {"op", s.op},
                  {"rows", s.rows},
                  {"out", s.out},
                  {"in", s.in},
                  {"out_dtype", s.fp32_out ? "fp32" : "bf16"},
                  {"repeats", o.repeats},
                  {"inner_runs", inner},
                  {"kvserve_ms", *ours_ms},
                  {"cublas_ms", *theirs_ms},
                  {"kvserve_tflops", flops / (*ours_ms * 1e9)},
                  {"cublas_tflops", flops / (*theirs_ms * 1e9)},
                  {"rate_vs_cublas", *theirs_ms / *ours_ms}});
  }
  return absl::OkStatus();
}

}  // namespace kvserve::bench
