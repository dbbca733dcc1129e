#pragma once

#include <functional>
#include <string>

#include "cuda_emulator/host_types.h"

namespace kvserve::cuda_emulator {

// The order in which a block's runnable threads are resumed between barriers. Reversing it makes
// a missing barrier show in the other direction too (a write after a read, not only before).
enum class ThreadOrder { kForward, kReverse };

// Runs one block of CUDA threads as fibers on the calling OS thread, releasing block and warp
// barriers when every participant has arrived. Returns "" or what the block did wrong (a fault
// raised by Fail, a deadlock, lanes of a warp at different shuffles or wmma operations).
std::string RunBlock(const dim3& grid, const dim3& block, const uint3& block_index,
                     unsigned char* dynamic_shared, ThreadOrder order,
                     const std::function<void()>& thread);

}  // namespace kvserve::cuda_emulator
