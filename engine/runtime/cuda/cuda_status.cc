#include "engine/runtime/cuda/cuda_status.h"

#include "absl/strings/str_cat.h"

namespace kvserve::cuda {

absl::Status CudaStatus(cudaError_t error, absl::string_view what) {
  if (error == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("cuda backend: ", what, ": ", cudaGetErrorName(error),
                                          " (", cudaGetErrorString(error), ")"));
}

}  // namespace kvserve::cuda
