#include "tools/bench/latency_summary.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace kvserve::bench {

nlohmann::json SummarizeLatencies(std::vector<double> samples) {
  if (samples.empty()) {
    return {{"count", 0}, {"mean", 0}, {"p50", 0}, {"p90", 0}, {"p99", 0}, {"max", 0}};
  }
  std::sort(samples.begin(), samples.end());
  const auto percentile = [&](double p) {
    const size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * samples.size()));
    return samples[std::clamp<size_t>(rank, 1, samples.size()) - 1];
  };
  const double mean = std::accumulate(samples.begin(), samples.end(), 0.0) / samples.size();
  return {{"count", samples.size()}, {"mean", mean},          {"p50", percentile(50)},
          {"p90", percentile(90)},   {"p99", percentile(99)}, {"max", samples.back()}};
}

}  // namespace kvserve::bench
