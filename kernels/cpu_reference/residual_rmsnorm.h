#pragma once

#include "kernels/bf16.h"

namespace kvserve::kernels::reference {

// LaunchResidualRmsNorm's twin: x += residual (rounded to bf16), y = x / rms(x) * weight.
void ResidualRmsNorm(Bf16* x, const Bf16* residual, const Bf16* weight, Bf16* y, int rows, int dim,
                     float eps);

}  // namespace kvserve::kernels::reference
