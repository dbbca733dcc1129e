#include "engine/kv/prefill_flops.h"

#include <cstdint>

namespace kvserve {

double LayerPrefillFlops(const ModelConfig& c, LayerRows rows) {
  const double d = c.dim;
  const double attention_params = d * c.q_dim() + 2 * d * c.kv_dim() + double{1} * c.q_dim() * d;
  const double mlp_params = 3 * d * c.ffn_dim;
  const double n = rows.attention;
  return 2 * attention_params * n + 2 * n * n * c.n_heads * c.head_dim + 2 * mlp_params * rows.mlp;
}

double PrefillFlopsFraction(const ModelConfig& config, std::span<const LayerRows> executed,
                            int prompt_tokens) {
  if (prompt_tokens <= 0 || config.n_layers <= 0) return 1.0;
  const LayerRows full{prompt_tokens, prompt_tokens};
  double done = 0;
  for (int l = 0; l < config.n_layers; ++l) {
    done += LayerPrefillFlops(config, l < static_cast<int>(executed.size()) ? executed[l] : full);
  }
  return done / (config.n_layers * LayerPrefillFlops(config, full));
}

}  // namespace kvserve
