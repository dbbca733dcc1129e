#pragma once

#include <cuda_runtime_api.h>

#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace kvserve::cuda {

// OK for cudaSuccess; otherwise Internal naming `what` and CUDA's own description of the error.
absl::Status CudaStatus(cudaError_t error, absl::string_view what);

}  // namespace kvserve::cuda
