#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

namespace kvserve {

// exp(x) for x <= 0 within ~1e-7 relative error (Cephes expf: range reduction to
// [-ln2/2, ln2/2], degree-6 polynomial, 2^n from the exponent bits); 0 below -87 and for -inf.
// Exists because std::exp does not vectorize (sampling softmax over the vocabulary, attention
// softmax, SiLU). Branch-free so that GCC vectorizes loops over it; users build with
// -fno-trapping-math for that.
inline float FastExpNonPositive(float x) {
  const float clamped = std::max(x, -87.0f);  // keeps 2^n a normal float; NaN stays NaN
  const float n = std::floor(clamped * 1.44269504088896341f + 0.5f);
  const float r =
      clamped - n * 0.693359375f - n * -2.12194440e-4f;  // ln2 split in two for accuracy
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const float two_to_n = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  return x >= -87.0f ? p * two_to_n : 0.0f;
}

}  // namespace kvserve
