#include "tools/bench/gpu_timer.h"

#include <algorithm>

#include "engine/base/status_macros.h"
#include "engine/runtime/cuda/cuda_status.h"

namespace kvserve::bench {
namespace {

using cuda::CudaStatus;

// Two events, destroyed on every path out.
class EventPair {
 public:
  EventPair() = default;
  ~EventPair() {
    if (start_ != nullptr) cudaEventDestroy(start_);
    if (stop_ != nullptr) cudaEventDestroy(stop_);
  }
  EventPair(const EventPair&) = delete;
  EventPair& operator=(const EventPair&) = delete;

  absl::Status Create() {
    KVSERVE_RETURN_IF_ERROR(CudaStatus(cudaEventCreate(&start_), "event"));
    return CudaStatus(cudaEventCreate(&stop_), "event");
  }
  cudaEvent_t start() const { return start_; }
  cudaEvent_t stop() const { return stop_; }

 private:
  cudaEvent_t start_ = nullptr;
  cudaEvent_t stop_ = nullptr;
};

}  // namespace

absl::StatusOr<double> TimeOnStreamMs(cudaStream_t stream, int warmup, int repeats, int inner,
                                      const std::function<absl::Status()>& launch) {
  EventPair events;
  KVSERVE_RETURN_IF_ERROR(events.Create());
  for (int i = 0; i < warmup; ++i) {
    KVSERVE_RETURN_IF_ERROR(launch());
  }
  inner = std::max(1, inner);
  std::vector<double> samples;
  for (int r = 0; r < std::max(1, repeats); ++r) {
    if (auto s = CudaStatus(cudaEventRecord(events.start(), stream), "event record"); !s.ok()) {
      return s;
    }
    for (int i = 0; i < inner; ++i) {
      KVSERVE_RETURN_IF_ERROR(launch());
    }
    if (auto s = CudaStatus(cudaEventRecord(events.stop(), stream), "event record"); !s.ok()) {
      return s;
    }
    KVSERVE_RETURN_IF_ERROR(CudaStatus(cudaEventSynchronize(events.stop()), "event sync"));
    float ms = 0;
    if (auto s = CudaStatus(cudaEventElapsedTime(&ms, events.start(), events.stop()), "elapsed");
        !s.ok()) {
      return s;
    }
    samples.push_back(static_cast<double>(ms) / inner);
  }
  return Median(std::move(samples));
}

}  // namespace kvserve::bench
