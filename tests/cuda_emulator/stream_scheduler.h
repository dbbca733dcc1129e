#pragma once

#include <functional>

#include "cuda_runtime_api.h"

namespace kvserve::cuda_emulator {

// The work of created streams: what each stream has been given and not yet run, events and the
// waits on them. In the eager schedule (the default) work runs when it is issued, one legal order
// among many. The deferred schedules queue it and run it only when the host must see it (a
// synchronisation, a pageable copy, a legacy default-stream call), in issue order or latest
// first: work a missing cudaStreamWaitEvent leaves unordered then runs in the wrong order and the
// race shows in the results, as it may on a GPU.

// Queues `work` on `stream` (null: the legacy default stream, which runs at once after every
// blocking stream has drained). Returns `work`'s error in the eager schedule, else cudaSuccess;
// deferred errors come back from the next synchronisation.
cudaError_t Enqueue(cudaStream_t stream, std::function<cudaError_t()> work);

// Runs everything queued on `stream` (null: every blocking stream) and what it waits for.
cudaError_t DrainStream(cudaStream_t stream);

// Runs everything queued.
cudaError_t DrainAll();

// Counts a host wait that is not a synchronisation call (a cudaMemcpy, a pageable copy on a
// created stream): HostWaitCount.
void CountHostWait();

}  // namespace kvserve::cuda_emulator
