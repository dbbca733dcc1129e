#pragma once

namespace kvserve::cuda {

// CUDA devices this process can use; 0 when there is none or no driver (never an error: the
// caller turns "none" into its own message).
int CudaDeviceCount();

}  // namespace kvserve::cuda
