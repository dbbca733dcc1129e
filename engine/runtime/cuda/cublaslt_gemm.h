#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <map>
#include <memory>
#include <tuple>

#include "absl/status/statusor.h"
#include "kernels/bf16.h"

namespace kvserve::cuda {

// The linear layers on cuBLASLt: y[rows][out] = x[rows][in] · w[out][in]ᵀ with bf16 inputs and
// fp32 accumulation, y in bf16 (activations) or fp32 (logits). Every operand is row-major, as the
// weights are stored; pointers must be 256-byte aligned (the pool's buffers are). One matmul plan
// (descriptors and the heuristic's algorithm) is kept per shape, so the decode loop does no
// heuristic search after its first step.
class CublasLtGemm {
 public:
  // `workspace` (device, `workspace_bytes`) is the matmuls' scratch, owned by the caller.
  static absl::StatusOr<std::unique_ptr<CublasLtGemm>> Create(void* workspace,
                                                              size_t workspace_bytes);
  ~CublasLtGemm();
  CublasLtGemm(const CublasLtGemm&) = delete;
  CublasLtGemm& operator=(const CublasLtGemm&) = delete;

  absl::Status Run(const kernels::Bf16* x, const kernels::Bf16* w, kernels::Bf16* y, int rows,
                   int out, int in, cudaStream_t stream);
  absl::Status Run(const kernels::Bf16* x, const kernels::Bf16* w, float* y, int rows, int out,
                   int in, cudaStream_t stream);

 private:
  struct Plan;
  using Shape = std::tuple<int, int, int, bool>;  // rows, out, in, fp32 output

  CublasLtGemm(cublasLtHandle_t handle, void* workspace, size_t workspace_bytes);
  absl::StatusOr<const Plan*> PlanFor(const Shape& shape);
  absl::Status Launch(const void* x, const void* w, void* y, const Shape& shape,
                      cudaStream_t stream);

  cublasLtHandle_t handle_;
  void* workspace_;
  size_t workspace_bytes_;
  std::map<Shape, std::unique_ptr<Plan>> plans_;
};

// What the workspace should hold: cuBLAS's recommendation for Hopper.
inline constexpr size_t kCublasLtWorkspaceBytes = size_t{32} << 20;

}  // namespace kvserve::cuda
