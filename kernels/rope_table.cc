#include "kernels/rope_params.h"

#include <cmath>
#include <cstddef>

namespace kvserve::kernels {

void BuildRopeTable(int max_positions, int rope_dim, float theta, float* table) {
  const int half = rope_dim / 2;
  for (int pos = 0; pos < max_positions; ++pos) {
    float* row = table + static_cast<size_t>(pos) * rope_dim;
    for (int i = 0; i < half; ++i) {
      const float inv_freq = 1.0f / std::pow(theta, static_cast<float>(2 * i) / rope_dim);
      const double angle = static_cast<double>(pos) * inv_freq;
      row[i] = static_cast<float>(std::cos(angle));
      row[half + i] = static_cast<float>(std::sin(angle));
    }
  }
}

}  // namespace kvserve::kernels
