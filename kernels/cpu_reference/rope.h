#pragma once

#include "kernels/rope_params.h"

namespace kvserve::kernels::reference {

// LaunchRope's twin: the same RopeParams, host pointers.
void Rope(const RopeParams& params);

}  // namespace kvserve::kernels::reference
