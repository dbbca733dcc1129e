// The portable twins: plain integer dot products per block, the reference the SIMD kernels are
// tested against.
#include "kernels/cpu/dot_rows.h"
#include "kernels/cpu/half.h"
#include "kernels/cpu/k_quant_scales.h"
#include "kernels/cpu/vec_dot_tables.h"

namespace kvserve::kernels::cpu {
namespace {

// Element l of an activation block in units of its d: both planes as one 16-bit value.
int X(const Q8Block& b, int l) { return 256 * b.q[l] + b.r[l]; }

float DotF32(const uint8_t* w, const float* x, const Q8Block*, int64_t k) {
  float sum = 0.0f;
  for (int64_t i = 0; i < k; ++i) {
    float v;
    std::memcpy(&v, w + 4 * i, sizeof(v));
    sum += v * x[i];
  }
  return sum;
}

float DotF16(const uint8_t* w, const float* x, const Q8Block*, int64_t k) {
  float sum = 0.0f;
  for (int64_t i = 0; i < k; ++i) sum += HalfToFloat(LoadU16(w + 2 * i)) * x[i];
  return sum;
}

float DotBF16(const uint8_t* w, const float* x, const Q8Block*, int64_t k) {
  float sum = 0.0f;
  for (int64_t i = 0; i < k; ++i) sum += Bf16ToFloat(LoadU16(w + 2 * i)) * x[i];
  return sum;
}

float DotQ8_0(const uint8_t* w, const float*, const Q8Block* x, int64_t k) {
  float sum = 0.0f;
  for (int64_t b = 0; b < k / 32; ++b, w += 34) {
    const int8_t* q = reinterpret_cast<const int8_t*>(w + 2);
    int dot = 0;
    for (int j = 0; j < 32; ++j) dot += q[j] * X(x[b], j);
    sum += HalfToFloat(LoadU16(w)) * x[b].d * static_cast<float>(dot);
  }
  return sum;
}

// Q4_0 and Q4_1 share the nibble order: byte j holds elements j (low) and j + 16 (high).
int DotNibbles(const uint8_t* qs, const Q8Block& x) {
  int dot = 0;
  for (int j = 0; j < 16; ++j) dot += (qs[j] & 0xf) * X(x, j) + (qs[j] >> 4) * X(x, j + 16);
  return dot;
}

float DotQ4_0(const uint8_t* w, const float*, const Q8Block* x, int64_t k) {
  float sum = 0.0f;
  for (int64_t b = 0; b < k / 32; ++b, w += 18) {
    const float d = HalfToFloat(LoadU16(w));
    sum += d * (x[b].d * static_cast<float>(DotNibbles(w + 2, x[b])) - 8.0f * x[b].sum);
  }
  return sum;
}

float DotQ4_1(const uint8_t* w, const float*, const Q8Block* x, int64_t k) {
  float sum = 0.0f;
  for (int64_t b = 0; b < k / 32; ++b, w += 20) {
    const float d = HalfToFloat(LoadU16(w));
    const float m = HalfToFloat(LoadU16(w + 2));
    sum += d * x[b].d * static_cast<float>(DotNibbles(w + 4, x[b])) + m * x[b].sum;
  }
  return sum;
}

float DotQ4_K(const uint8_t* w, const float*, const Q8Block* x, int64_t k) {
  using L = Q4KLayout;
  float sum = 0.0f;
  for (int64_t b = 0; b < k / kQK; ++b, w += L::kBytes, x += 8) {
    const float d = HalfToFloat(LoadU16(w + L::kD));
    const float dmin = HalfToFloat(LoadU16(w + L::kDmin));
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      KQuantScaleMin(j, w + L::kScales, &sc, &m);
      const uint8_t* q = w + L::kQs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      int dot = 0;
      for (int l = 0; l < 32; ++l) dot += ((q[l] >> shift) & 0xf) * X(x[j], l);
      sum += d * sc * x[j].d * static_cast<float>(dot) - dmin * m * x[j].sum;
    }
  }
  return sum;
}

float DotQ5_K(const uint8_t* w, const float*, const Q8Block* x, int64_t k) {
  using L = Q5KLayout;
  float sum = 0.0f;
  for (int64_t b = 0; b < k / kQK; ++b, w += L::kBytes, x += 8) {
    const float d = HalfToFloat(LoadU16(w + L::kD));
    const float dmin = HalfToFloat(LoadU16(w + L::kDmin));
    const uint8_t* qh = w + L::kQh;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      KQuantScaleMin(j, w + L::kScales, &sc, &m);
      const uint8_t* q = w + L::kQs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      int dot = 0;
      for (int l = 0; l < 32; ++l)
        dot += (((q[l] >> shift) & 0xf) | (((qh[l] >> j) & 1) << 4)) * X(x[j], l);
      sum += d * sc * x[j].d * static_cast<float>(dot) - dmin * m * x[j].sum;
    }
  }
  return sum;
}

float DotQ6_K(const uint8_t* w, const float*, const Q8Block* x, int64_t k) {
  using L = Q6KLayout;
  float sum = 0.0f;
  for (int64_t b = 0; b < k / kQK; ++b, w += L::kBytes, x += 8) {
    const float d = HalfToFloat(LoadU16(w + L::kD));
    const int8_t* sc = reinterpret_cast<const int8_t*>(w + L::kScales);
    for (int sub = 0; sub < 8; ++sub) {
      const int h = sub / 4, p = sub % 4;
      const uint8_t* ql = w + L::kQl + 64 * h + 32 * (p & 1);
      const uint8_t* qh = w + L::kQh + 32 * h;
      int dot[2] = {0, 0};
      for (int l = 0; l < 32; ++l) {
        const int lo = p < 2 ? (ql[l] & 0xf) : (ql[l] >> 4);
        dot[l / 16] += ((lo | (((qh[l] >> (2 * p)) & 3) << 4)) - 32) * X(x[sub], l);
      }
      sum += d * x[sub].d * static_cast<float>(sc[2 * sub] * dot[0] + sc[2 * sub + 1] * dot[1]);
    }
  }
  return sum;
}

}  // namespace

const DotKernelTable& ScalarKernelTable() {
  static const DotKernelTable table{
      Isa::kScalar,
      {RowsOf<DotF32>, RowsOf<DotF16>, RowsOf<DotBF16>, RowsOf<DotQ8_0>, RowsOf<DotQ4_0>,
       RowsOf<DotQ4_1>, RowsOf<DotQ4_K>, RowsOf<DotQ5_K>, RowsOf<DotQ6_K>}};
  return table;
}

}  // namespace kvserve::kernels::cpu
