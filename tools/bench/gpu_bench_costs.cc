#include "tools/bench/gpu_bench_costs.h"

#include "engine/kv/prefill_flops.h"

namespace kvserve::bench {
namespace {

constexpr double kBf16Bytes = 2;

}  // namespace

double CausalAttentionFlops(const ModelConfig& c, int64_t n) {
  return 2.0 * static_cast<double>(n) * static_cast<double>(n) * c.n_heads * c.head_dim;
}

double PrefillFlops(const ModelConfig& c, int64_t n) {
  const int rows = static_cast<int>(n);
  const double layers = c.n_layers * LayerPrefillFlops(c, {.attention = rows, .mlp = rows});
  const double lm_head = 2.0 * c.dim * static_cast<double>(c.vocab_size);
  return layers + lm_head;
}

double DecodeStepBytes(const ModelConfig& c, int batch, int64_t context) {
  // num_parameters counts the embedding once more when the LM head is separate: drop that copy,
  // which a step reads only `batch` rows of.
  const double embedding = static_cast<double>(c.vocab_size) * c.dim;
  const double weights = static_cast<double>(c.num_parameters()) -
                         (c.tied_embeddings ? 0.0 : embedding) +
                         (2.0 * c.n_layers + 1) * c.dim;  // the norms
  return weights * kBf16Bytes +
         static_cast<double>(batch) * static_cast<double>(context) * KvBytesPerToken(c);
}

int64_t KvBytesPerToken(const ModelConfig& c) {
  return int64_t{2} * c.n_layers * c.kv_dim() * static_cast<int64_t>(kBf16Bytes);
}

}  // namespace kvserve::bench
