#pragma once

#include <cuda_runtime_api.h>

#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/bench/median.h"

namespace kvserve::bench {

// Times device work on `stream` with CUDA events: `launch` enqueues one run (returning what its
// launches returned); it runs `warmup` times untimed, then `repeats` samples of `inner` runs each,
// and the result is the median sample's milliseconds per run. Events time the stream alone, so
// host overhead between launches shows only where it starves the GPU.
absl::StatusOr<double> TimeOnStreamMs(cudaStream_t stream, int warmup, int repeats, int inner,
                                      const std::function<absl::Status()>& launch);

}  // namespace kvserve::bench
