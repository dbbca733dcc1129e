#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/model/model_weights.h"
#include "engine/runtime/backend.h"

namespace kvserve {

// "cpu", or "cuda" where this build has it; anything else is InvalidArgument naming the choices.
// `threads`: the CPU backend's worker threads (<= 0: one per hardware thread).
absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const std::string& name,
                                                       const ModelConfig& config,
                                                       ModelWeights weights, int threads = 0);

}  // namespace kvserve
