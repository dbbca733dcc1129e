#pragma once

#include "kernels/selection_params.h"

namespace kvserve::kernels::reference {

// LaunchSelectKvHeadRows' twin on host memory: SelectPerKvHead per sequence (a window-0 sequence
// keeps rows 0 .. keep - 1).
void SelectKvHeadRows(const KvHeadSelectParams& params);

// LaunchSelectPropagatedRows' twin on host memory: SelectPropagatedByTotal per sequence.
void SelectPropagatedRows(const PropagationSelectParams& params);

}  // namespace kvserve::kernels::reference
