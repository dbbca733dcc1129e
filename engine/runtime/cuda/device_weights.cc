#include "engine/runtime/cuda/device_weights.h"

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/runtime/cuda/cuda_status.h"

namespace kvserve::cuda {
namespace {

using kernels::Bf16;

absl::StatusOr<Bf16*> Take(DeviceMemoryPool& pool, int64_t elements, absl::string_view what) {
  auto at = pool.TakePersistent(static_cast<size_t>(elements) * sizeof(Bf16), what);
  if (!at.ok()) return at.status();
  return static_cast<Bf16*>(*at);
}

// Rounds `host` to bf16 and copies it to `device`; empties `host`.
absl::Status Upload(std::vector<float>& host, Bf16* device, std::vector<Bf16>& staging,
                    absl::string_view what) {
  staging.resize(host.size());
  for (size_t i = 0; i < host.size(); ++i) staging[i] = kernels::ToBf16(host[i]);
  host = {};
  return CudaStatus(
      cudaMemcpy(device, staging.data(), staging.size() * sizeof(Bf16), cudaMemcpyHostToDevice),
      what);
}

}  // namespace

Bf16* DeviceLayerWeights::Destination(std::vector<float> LayerWeights::*field,
                                      const ModelConfig& c) const {
  const size_t dim = c.dim;
  if (field == &LayerWeights::attn_norm) return attn_norm;
  if (field == &LayerWeights::wq) return wqkv;
  if (field == &LayerWeights::wk) return wqkv + c.q_dim() * dim;
  if (field == &LayerWeights::wv) return wqkv + (c.q_dim() + c.kv_dim()) * dim;
  if (field == &LayerWeights::wo) return wo;
  if (field == &LayerWeights::ffn_norm) return ffn_norm;
  if (field == &LayerWeights::w_gate) return w_gate_up;
  if (field == &LayerWeights::w_up) return w_gate_up + c.ffn_dim * dim;
  if (field == &LayerWeights::w_down) return w_down;
  return nullptr;
}

absl::StatusOr<DeviceWeights> AllocateDeviceWeights(const ModelConfig& c, bool own_lm_head,
                                                    DeviceMemoryPool& pool) {
  DeviceWeights w;
  const int64_t d = c.dim;
  const int64_t embedding = int64_t{c.vocab_size} * d;
  auto take = [&](Bf16** out, int64_t elements, absl::string_view what) {
    auto at = Take(pool, elements, what);
    if (at.ok()) *out = *at;
    return at.status();
  };
  KVSERVE_RETURN_IF_ERROR(take(&w.token_embedding, embedding, "token embedding"));
  KVSERVE_RETURN_IF_ERROR(take(&w.final_norm, d, "final norm"));
  w.lm_head = w.token_embedding;
  if (own_lm_head) {
    KVSERVE_RETURN_IF_ERROR(take(&w.lm_head, embedding, "LM head"));
  }
  w.layers.resize(c.n_layers);
  const int64_t qkv = c.q_dim() + 2 * c.kv_dim();
  for (int l = 0; l < c.n_layers; ++l) {
    DeviceLayerWeights& layer = w.layers[l];
    const std::string what = absl::StrCat("layer ", l, " weights");
    for (auto [out, elements] : {std::pair{&layer.attn_norm, d},
                                 {&layer.wqkv, qkv * d},
                                 {&layer.wo, d * c.q_dim()},
                                 {&layer.ffn_norm, d},
                                 {&layer.w_gate_up, 2 * d * c.ffn_dim},
                                 {&layer.w_down, d * c.ffn_dim}}) {
      KVSERVE_RETURN_IF_ERROR(take(out, elements, what));
    }
  }
  return w;
}

absl::Status UploadWeights(ModelWeights host, const ModelConfig& c, const DeviceWeights& device) {
  std::vector<Bf16> staging;
  if (auto s = Upload(host.token_embedding, device.token_embedding, staging, "token embedding");
      !s.ok()) {
    return s;
  }
  KVSERVE_RETURN_IF_ERROR(Upload(host.final_norm, device.final_norm, staging, "final norm"));
  if (!host.lm_head.empty()) {
    KVSERVE_RETURN_IF_ERROR(Upload(host.lm_head, device.lm_head, staging, "LM head"));
  }
  for (int l = 0; l < c.n_layers; ++l) {
    for (const LayerTensor& t : LayerTensors(c)) {
      Bf16* to = device.layers[l].Destination(t.field, c);
      const std::string what = absl::StrCat("blk.", l, ".", t.gguf_name);
      KVSERVE_RETURN_IF_ERROR(Upload(host.layers[l].*t.field, to, staging, what));
    }
  }
  return absl::OkStatus();
}

}  // namespace kvserve::cuda
