#pragma once

#include <cstdint>

#include "engine/model/model_config.h"

namespace kvserve::bench {

// The work the GPU benchmark divides its times by. torch_reference.py counts the same way, so
// the two tools' TFLOP/s and GB/s compare directly.

// One layer's causal attention over an n-token prompt: QKᵀ and PV on the lower triangle,
// 2 · n² · Hq · hd (the count engine/kv/prefill_flops.h uses).
double CausalAttentionFlops(const ModelConfig& config, int64_t n);

// A full prefill of n tokens: every layer's projections, MLP and causal attention
// (LayerPrefillFlops) plus the LM head on the last token. Norms, RoPE and SwiGLU are left out.
double PrefillFlops(const ModelConfig& config, int64_t n);

// Bytes one decode step must read from device memory: every layer's bf16 weights and the LM head
// (the embedding only for the batch's rows, so not counted unless tied to the LM head), and each
// sequence's bf16 K and V of `context` tokens in every layer. The lower bound of a step's traffic:
// activations, the new KV rows and the decode split's partials are left out.
double DecodeStepBytes(const ModelConfig& config, int batch, int64_t context);

// bf16 K and V bytes of one token across all layers.
int64_t KvBytesPerToken(const ModelConfig& config);

}  // namespace kvserve::bench
