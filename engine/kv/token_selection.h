#pragma once

// The SnapKV/FastKV selection steps live with the kernels whose CPU twins they are
// (kernels/cpu_reference/token_selection.h): the CPU engine and the CUDA kernels' tests share one
// implementation. The engine names them here.
#include "kernels/cpu_reference/token_selection.h"

namespace kvserve {

using kernels::ScorePooling;
using kernels::reference::GroupSumScores;
using kernels::reference::PoolScores;
using kernels::reference::SelectPerKvHead;
using kernels::reference::SelectPropagatedTokens;

}  // namespace kvserve
