#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/loaded_model.h"

namespace kvserve {

// Shapes of real models, for `synthetic:NAME` (benchmarks only: the weights are random).
absl::StatusOr<ModelConfig> SyntheticModelConfig(const std::string& name);
std::vector<std::string> SyntheticModelNames();

// Seeded random weights of that shape, in host memory (no tokenizer). Fails with a clear message
// when the fp32 weights would not fit in `max_bytes`.
absl::StatusOr<LoadedModel> MakeSyntheticModel(const std::string& name, uint64_t seed,
                                               int64_t max_bytes);
// The same for any shape `config` describes (tests: shapes no named model has).
absl::StatusOr<LoadedModel> MakeSyntheticModel(const ModelConfig& config, uint64_t seed,
                                               int64_t max_bytes);

}  // namespace kvserve
