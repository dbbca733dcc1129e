#include "kernels/cpu_reference/residual_rmsnorm.h"

#include <cmath>
#include <cstddef>

namespace kvserve::kernels::reference {

void ResidualRmsNorm(Bf16* x, const Bf16* residual, const Bf16* weight, Bf16* y, int rows, int dim,
                     float eps) {
  for (int r = 0; r < rows; ++r) {
    Bf16* xr = x + static_cast<size_t>(r) * dim;
    double sum_sq = 0.0;
    for (int i = 0; i < dim; ++i) {
      if (residual != nullptr) {
        xr[i] = ToBf16(ToFloat(xr[i]) + ToFloat(residual[static_cast<size_t>(r) * dim + i]));
      }
      const double v = ToFloat(xr[i]);
      sum_sq += v * v;
    }
    const float inv_rms = static_cast<float>(1.0 / std::sqrt(sum_sq / dim + eps));
    for (int i = 0; i < dim; ++i) {
      y[static_cast<size_t>(r) * dim + i] = ToBf16(ToFloat(xr[i]) * inv_rms * ToFloat(weight[i]));
    }
  }
}

}  // namespace kvserve::kernels::reference
