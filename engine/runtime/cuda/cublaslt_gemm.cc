#include "engine/runtime/cuda/cublaslt_gemm.h"

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"

namespace kvserve::cuda {
namespace {

absl::Status LtStatus(cublasStatus_t status, absl::string_view what) {
  if (status == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  // cuBLAS's status names live in libcublas, which nothing else here needs: print the number.
  return absl::InternalError(absl::StrCat("cuda backend: cuBLASLt ", what, " failed with status ",
                                          static_cast<int>(status)));
}

// Plans are cheap, but a server sees many distinct row counts: past this many, start over.
constexpr size_t kMaxPlans = 4096;

}  // namespace

// One shape's descriptors and chosen algorithm.
struct CublasLtGemm::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t w = nullptr, x = nullptr, y = nullptr;
  cublasLtMatmulAlgo_t algo{};
  ~Plan() {
    if (y) cublasLtMatrixLayoutDestroy(y);
    if (x) cublasLtMatrixLayoutDestroy(x);
    if (w) cublasLtMatrixLayoutDestroy(w);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

absl::StatusOr<std::unique_ptr<CublasLtGemm>> CublasLtGemm::Create(void* workspace,
                                                                   size_t workspace_bytes) {
  cublasLtHandle_t handle = nullptr;
  KVSERVE_RETURN_IF_ERROR(LtStatus(cublasLtCreate(&handle), "create"));
  return std::unique_ptr<CublasLtGemm>(new CublasLtGemm(handle, workspace, workspace_bytes));
}

CublasLtGemm::CublasLtGemm(cublasLtHandle_t handle, void* workspace, size_t workspace_bytes)
    : handle_(handle), workspace_(workspace), workspace_bytes_(workspace_bytes) {}

CublasLtGemm::~CublasLtGemm() {
  plans_.clear();
  cublasLtDestroy(handle_);
}

absl::StatusOr<const CublasLtGemm::Plan*> CublasLtGemm::PlanFor(const Shape& shape) {
  if (auto it = plans_.find(shape); it != plans_.end()) return it->second.get();
  if (plans_.size() >= kMaxPlans) plans_.clear();
  const auto [rows, out, in, fp32_out] = shape;
  auto plan = std::make_unique<Plan>();
  // cuBLASLt is column-major: row-major y[rows][out] is column-major yᵀ[out][rows], so compute
  // yᵀ = w · xᵀ, where row-major w[out][in] read column-major is wᵀ (hence op T) and row-major
  // x[rows][in] read column-major is xᵀ.
  const cublasOperation_t transpose = CUBLAS_OP_T;
  const cudaDataType_t y_type = fp32_out ? CUDA_R_32F : CUDA_R_16BF;
  if (auto s = LtStatus(cublasLtMatmulDescCreate(&plan->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F),
                        "matmul descriptor");
      !s.ok()) {
    return s;
  }
  if (auto s = LtStatus(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA,
                                                       &transpose, sizeof(transpose)),
                        "transpose attribute");
      !s.ok()) {
    return s;
  }
  if (auto s = LtStatus(cublasLtMatrixLayoutCreate(&plan->w, CUDA_R_16BF, in, out, in), "layout");
      !s.ok()) {
    return s;
  }
  if (auto s = LtStatus(cublasLtMatrixLayoutCreate(&plan->x, CUDA_R_16BF, in, rows, in), "layout");
      !s.ok()) {
    return s;
  }
  if (auto s = LtStatus(cublasLtMatrixLayoutCreate(&plan->y, y_type, out, rows, out), "layout");
      !s.ok()) {
    return s;
  }
  cublasLtMatmulPreference_t preference = nullptr;
  if (auto s = LtStatus(cublasLtMatmulPreferenceCreate(&preference), "preference"); !s.ok()) {
    return s;
  }
  const uint64_t workspace_bytes = workspace_bytes_;
  cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                       &workspace_bytes, sizeof(workspace_bytes));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(
      handle_, plan->desc, plan->w, plan->x, plan->y, plan->y, preference, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(preference);
  KVSERVE_RETURN_IF_ERROR(LtStatus(status, "heuristic"));
  if (found == 0) {
    return absl::InternalError(absl::StrCat("cuda backend: cuBLASLt has no algorithm for ", rows,
                                            " x ", in, " by ", out, " x ", in));
  }
  plan->algo = result.algo;
  return plans_.emplace(shape, std::move(plan)).first->second.get();
}

absl::Status CublasLtGemm::Launch(const void* x, const void* w, void* y, const Shape& shape,
                                  cudaStream_t stream) {
  if (std::get<0>(shape) == 0) return absl::OkStatus();
  auto plan = PlanFor(shape);
  if (!plan.ok()) return plan.status();
  const float alpha = 1.0f, beta = 0.0f;
  const Plan& p = **plan;
  return LtStatus(cublasLtMatmul(handle_, p.desc, &alpha, w, p.w, x, p.x, &beta, y, p.y, y, p.y,
                                 &p.algo, workspace_, workspace_bytes_, stream),
                  "matmul");
}

absl::Status CublasLtGemm::Run(const kernels::Bf16* x, const kernels::Bf16* w, kernels::Bf16* y,
                               int rows, int out, int in, cudaStream_t stream) {
  return Launch(x, w, y, {rows, out, in, false}, stream);
}

absl::Status CublasLtGemm::Run(const kernels::Bf16* x, const kernels::Bf16* w, float* y, int rows,
                               int out, int in, cudaStream_t stream) {
  return Launch(x, w, y, {rows, out, in, true}, stream);
}

}  // namespace kvserve::cuda
