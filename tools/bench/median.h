#pragma once

#include <algorithm>
#include <vector>

namespace kvserve::bench {

// The median of `samples` (the middle one, or the mean of the two middle ones); 0 when empty.
inline double Median(std::vector<double> samples) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const size_t mid = samples.size() / 2;
  return samples.size() % 2 == 1 ? samples[mid] : (samples[mid - 1] + samples[mid]) / 2;
}

}  // namespace kvserve::bench
