#pragma once

#include "kernels/selection_params.h"

namespace kvserve::kernels::reference {

// LaunchKvCompaction's twin on host memory (the scratch is its own).
void KvCompaction(const KvCompactionParams& params);

}  // namespace kvserve::kernels::reference
