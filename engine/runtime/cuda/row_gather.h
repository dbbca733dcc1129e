#pragma once

// The row gather moved to kernels/ (it also gathers token-selective propagation's rows); the
// backend keeps calling it by this name.
#include "kernels/row_gather.h"

namespace kvserve::cuda {

using kernels::LaunchRowGather;

}  // namespace kvserve::cuda
