#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/q8_activations.h"
#include "kernels/cpu/weight_format.h"

namespace kvserve::kernels::cpu {

// Instruction sets with their own dot kernels, chosen at run time from the CPU's features.
enum class Isa : int {
  kScalar,      // portable C++: the twin every SIMD kernel is tested against
  kAvx2,        // AVX2 + FMA + F16C (maddubs/madd integer dots)
  kAvx512Vnni,  // AVX-512 VL/BW + VNNI (vpdpbusd integer dots)
};
const char* IsaName(Isa isa);
bool IsaSupported(Isa isa);
// The best supported ISA, capped by the environment variable KVSERVE_CPU_ISA (scalar, avx2,
// avx512vnni) when set: for benchmarks and for checking one path on a machine with a better one.
Isa SelectedIsa();

// y[i * ldy + j] (+)= dot(weight row j, activation row i) for i in [0, m) and j in the range a
// kernel is given. Activations come in fp32 (`x`, [m][k]) and, for block-quantized formats,
// also as Q8 blocks (`xq`, [m][k / 32]).
struct MatVecArgs {
  WeightFormat format;
  const uint8_t* w;   // [rows][row_bytes]
  size_t row_bytes;   // RowBytesOf(format, k)
  int64_t k;          // columns of the weight, elements of each activation row
  const float* x;     // [m][k]
  const Q8Block* xq;  // [m][k / 32] when UsesQ8Activations(format), else unused
  int m;
  float* y;
  int64_t ldy;
  bool accumulate;
};
using RowsKernel = void (*)(const MatVecArgs& args, int64_t row_begin, int64_t row_end);

// One ISA's kernels, indexed by WeightFormat.
struct DotKernelTable {
  Isa isa;
  RowsKernel rows[kNumWeightFormats];
};
// `isa` must be supported (IsaSupported).
const DotKernelTable& KernelTable(Isa isa);

// Output rows [row_begin, row_end) of args with the selected ISA's kernels.
inline void DotRows(const DotKernelTable& table, const MatVecArgs& args, int64_t row_begin,
                    int64_t row_end) {
  table.rows[static_cast<int>(args.format)](args, row_begin, row_end);
}

}  // namespace kvserve::kernels::cpu
