#pragma once

#include "kernels/bf16.h"

namespace kvserve::kernels::reference {

// LaunchSwiglu's twin: out[r][i] = silu(gate_up[r][i]) * gate_up[r][ffn + i].
void Swiglu(const Bf16* gate_up, Bf16* out, int rows, int ffn);

}  // namespace kvserve::kernels::reference
