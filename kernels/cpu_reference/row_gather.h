#pragma once

#include "kernels/row_gather_params.h"

namespace kvserve::kernels::reference {

// LaunchRowGather's twin on host memory.
void RowGather(const RowGatherParams& params);

}  // namespace kvserve::kernels::reference
