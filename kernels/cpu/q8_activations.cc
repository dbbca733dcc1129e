#include "kernels/cpu/q8_activations.h"

#include <algorithm>
#include <cmath>

namespace kvserve::kernels::cpu {

void QuantizeToQ8(const float* x, int64_t k, Q8Block* out) {
  for (int64_t b = 0; b < k / kQ8BlockSize; ++b, x += kQ8BlockSize) {
    float amax = 0.0f;
    for (int j = 0; j < kQ8BlockSize; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float step = amax / 127.0f;
    const float id = step != 0.0f ? 1.0f / step : 0.0f;
    int sum = 0;
    Q8Block& o = out[b];
    for (int j = 0; j < kQ8BlockSize; ++j) {
      const float v = x[j] * id;
      const float q = std::nearbyint(v);
      // |v - q| <= 1/2, so r lies in [-128, 128]; the exact halves are clamped to +-127, which
      // keeps -128 (that the Q8_0 kernels' sign trick cannot negate) out.
      const float r = std::clamp(std::nearbyint((v - q) * 256.0f), -127.0f, 127.0f);
      o.q[j] = static_cast<int8_t>(q);
      o.r[j] = static_cast<int8_t>(r);
      sum += 256 * static_cast<int>(q) + static_cast<int>(r);
    }
    o.d = step / 256.0f;
    o.sum = o.d * static_cast<float>(sum);
  }
}

}  // namespace kvserve::kernels::cpu
