#pragma once

#include <random>
#include <vector>

namespace kvserve::testing {

// `n` standard-normal floats: the inputs kernel tests compare against naive references.
inline std::vector<float> RandomNormal(int n, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

}  // namespace kvserve::testing
