#include "engine/model/model_config.h"

#include "absl/strings/str_cat.h"

namespace kvserve {

int64_t ModelConfig::num_parameters() const {
  const int64_t d = dim;
  const int64_t per_layer = d * q_dim() + 2 * d * kv_dim() + int64_t{q_dim()} * d + 3 * d * ffn_dim;
  const int64_t embed = int64_t{vocab_size} * d;
  return n_layers * per_layer + embed * (tied_embeddings ? 1 : 2);
}

absl::Status ModelConfig::Validate() const {
  auto bad = [](absl::string_view field, auto value) {
    return absl::InvalidArgumentError(absl::StrCat("model config: invalid ", field, " = ", value));
  };
  // Bounds keep a hostile file from requesting absurd allocations before any tensor is read.
  if (n_layers <= 0 || n_layers > 1024) return bad("n_layers", n_layers);
  if (dim <= 0 || dim > 65536) return bad("dim", dim);
  if (n_heads <= 0 || n_heads > 1024) return bad("n_heads", n_heads);
  if (n_kv_heads <= 0 || n_kv_heads > n_heads || n_heads % n_kv_heads != 0) {
    return bad("n_kv_heads", n_kv_heads);
  }
  if (head_dim <= 0 || head_dim > 1024 || head_dim % 2 != 0) return bad("head_dim", head_dim);
  if (ffn_dim <= 0 || ffn_dim > 1 << 20) return bad("ffn_dim", ffn_dim);
  if (vocab_size <= 0 || vocab_size > 1 << 22) return bad("vocab_size", vocab_size);
  if (context_length <= 0 || context_length > 1 << 24) return bad("context_length", context_length);
  if (rope_dim <= 0 || rope_dim > head_dim || rope_dim % 2 != 0) return bad("rope_dim", rope_dim);
  if (!(rope_theta > 0.0f)) return bad("rope_theta", rope_theta);
  if (!(rms_eps > 0.0f) || rms_eps > 1.0f) return bad("rms_eps", rms_eps);
  return absl::OkStatus();
}

}  // namespace kvserve
