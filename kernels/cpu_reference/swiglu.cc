#include "kernels/cpu_reference/swiglu.h"

#include <cmath>
#include <cstddef>

namespace kvserve::kernels::reference {

void Swiglu(const Bf16* gate_up, Bf16* out, int rows, int ffn) {
  for (int r = 0; r < rows; ++r) {
    const Bf16* g = gate_up + static_cast<size_t>(r) * 2 * ffn;
    for (int i = 0; i < ffn; ++i) {
      const float gate = ToFloat(g[i]);
      out[static_cast<size_t>(r) * ffn + i] =
          ToBf16(gate / (1.0f + std::exp(-gate)) * ToFloat(g[ffn + i]));
    }
  }
}

}  // namespace kvserve::kernels::reference
