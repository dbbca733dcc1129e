#pragma once

#include <vector>

#include "nlohmann/json.hpp"

namespace kvserve::bench {

// Mean and percentiles (nearest rank) of a set of samples, in the samples' unit; all zeros and
// "count": 0 when there are none.
nlohmann::json SummarizeLatencies(std::vector<double> samples);

}  // namespace kvserve::bench
