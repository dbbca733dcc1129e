#pragma once

#include "kernels/selection_params.h"

namespace kvserve::kernels::reference {

// LaunchScorePooling's twin on host memory: per sequence, PoolScores of every query head,
// GroupSumScores, and SumOverKvHeads where totals are asked for.
void ScorePoolingByKvHead(const ScorePoolingParams& params);

}  // namespace kvserve::kernels::reference
