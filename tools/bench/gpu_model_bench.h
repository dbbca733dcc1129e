#pragma once

#include "absl/status/status.h"
#include "engine/runtime/cuda/cuda_backend.h"
#include "nlohmann/json.hpp"
#include "tools/bench/gpu_bench_options.h"

namespace kvserve::bench {

// The whole model on the CUDA backend, driven as the scheduler drives it: Backend::Forward over
// SequenceKvCaches of a host PagePool whose page ids the backend mirrors on the device. Forward
// returns after its stream drained and the logits reached the host, so steady_clock around it is
// the step's latency as the engine sees it.

// TTFT of one prompt at each prefill length, prefilled in a single step with the last token's
// logits: the median of `repeats` after a warm-up run, with the achieved TFLOP/s
// (gpu_bench_costs.h). Prints a "prefill" line per length.
absl::Status RunPrefillBench(CudaBackend& backend, const GpuBenchOptions& options,
                             const nlohmann::json& common);

// Decode steps of `batch` sequences of `context` tokens each (filled by real prefill), for every
// batch × context: median step time, tokens/s, the bytes a step must read and the fraction of the
// HBM roofline they reach. Combinations whose KV does not fit print a "decode" line with
// "skipped": true and the reason.
absl::Status RunDecodeBench(CudaBackend& backend, const GpuBenchOptions& options,
                            const nlohmann::json& common);

}  // namespace kvserve::bench
