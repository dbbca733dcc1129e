#pragma once

#include <span>

#include "engine/model/model_config.h"

namespace kvserve {

// The rows one decoder layer ran on during a prefill: its attention block (norm, Q/K/V projections,
// causal attention, o_proj) and its MLP. They differ only at FastKV's TSP layer, whose rows are
// gathered right after o_proj (research/fastkv.md §4, "possible optimisation").
struct LayerRows {
  int attention = 0;
  int mlp = 0;
};

// FLOPs of one layer (research/fastkv.md §9): 2 · params · rows for the attention projections and
// for the MLP, plus 2 · n² · Hq · hd for causal attention over the layer's n rows. Norms, RoPE,
// window scoring and the LM head are left out: they are small, and the LM head runs on one row
// either way.
double LayerPrefillFlops(const ModelConfig& config, LayerRows rows);

// Executed / full prefill FLOPs of a `prompt_tokens` prompt whose layers ran on `executed` rows
// (one entry per layer; layers past the end count as full). 1.0 when nothing was dropped.
double PrefillFlopsFraction(const ModelConfig& config, std::span<const LayerRows> executed,
                            int prompt_tokens);

}  // namespace kvserve
