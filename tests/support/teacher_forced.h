#pragma once

#include <cstdint>
#include <vector>

#include "engine/runtime/backend.h"

namespace kvserve::testing {

// Feeds `tokens` to `backend` on one fresh cache (32-token pages): the first `prefill` tokens as
// chunks of `chunk` tokens (0: one chunk), then one token per step. One logits row per step; a
// failed step is reported as a test failure and ends the rows there.
std::vector<std::vector<float>> TeacherForcedLogits(Backend& backend,
                                                    const std::vector<int32_t>& tokens, int prefill,
                                                    int chunk = 0);

}  // namespace kvserve::testing
