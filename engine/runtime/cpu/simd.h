#pragma once

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace kvserve::cpu {

// Vector helpers for the hot loops. Each result depends only on its own inputs (never on how
// calls are grouped), so a sequence computes the same bits alone or in a batch.
#if defined(__AVX2__) && defined(__FMA__)
inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#endif

inline float Dot(const float* a, const float* b, int k) {
  int t = 0;
  float sum = 0.0f;
#if defined(__AVX2__) && defined(__FMA__)
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (; t + 16 <= k; t += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + t), _mm256_loadu_ps(b + t), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + t + 8), _mm256_loadu_ps(b + t + 8), acc1);
  }
  for (; t + 8 <= k; t += 8) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + t), _mm256_loadu_ps(b + t), acc0);
  }
  sum = HorizontalSum(_mm256_add_ps(acc0, acc1));
#endif
  for (; t < k; ++t) sum += a[t] * b[t];
  return sum;
}

// y += alpha * x
inline void Axpy(float alpha, const float* x, float* y, int k) {
  int t = 0;
#if defined(__AVX2__) && defined(__FMA__)
  const __m256 a = _mm256_set1_ps(alpha);
  for (; t + 8 <= k; t += 8) {
    _mm256_storeu_ps(y + t, _mm256_fmadd_ps(a, _mm256_loadu_ps(x + t), _mm256_loadu_ps(y + t)));
  }
#endif
  for (; t < k; ++t) y[t] += alpha * x[t];
}

}  // namespace kvserve::cpu
