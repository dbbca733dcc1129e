#include "server/model_info.h"

#include <string>

namespace kvserve::server {

v1::KvPolicy ToProto(const KvPolicyOptions& o, const ModelConfig& config) {
  v1::KvPolicy p;
  p.set_name(o.name);
  p.set_window(o.window);
  p.set_pool_kernel(o.pool_kernel);
  p.set_pool(o.pool == ScorePooling::kMax ? "max" : "avg");
  p.set_budget(o.budget);
  p.set_retain_rate(o.retain_rate);
  // -1 means "n_layers / 2 - 1": show the layer it resolves to for this model.
  p.set_tsp_layer(o.tsp_layer >= 0 ? o.tsp_layer : config.n_layers / 2 - 1);
  p.set_tsp_rate(o.tsp_rate);
  p.set_tsp_len(o.tsp_len);
  p.set_page_size(o.page_size);
  p.set_sink(o.sink);
  p.set_recent(o.recent);
  p.set_tau(o.tau);
  return p;
}

v1::ModelInfo BuildModelInfo(const ServingEngine& engine, const ServerConfig& server) {
  const ModelConfig& c = engine.config();
  v1::ModelInfo info;
  info.set_model(server.model);
  info.set_architecture(c.architecture);
  info.set_context_length(static_cast<uint32_t>(c.context_length));
  info.set_vocab_size(static_cast<uint32_t>(c.vocab_size));
  info.set_n_layers(static_cast<uint32_t>(c.n_layers));
  info.set_n_heads(static_cast<uint32_t>(c.n_heads));
  info.set_n_kv_heads(static_cast<uint32_t>(c.n_kv_heads));
  info.set_head_dim(static_cast<uint32_t>(c.head_dim));
  info.set_hidden_dim(static_cast<uint32_t>(c.dim));
  info.set_backend(std::string(engine.loaded.backend->name()));
  info.set_default_kv_policy(engine.default_kv_policy.name);
  for (std::string_view name : KvPolicyNames()) {
    v1::KvPolicyInfo* policy = info.add_kv_policies();
    policy->set_name(std::string(name));
    *policy->mutable_defaults() = ToProto(KvPolicyOptions{.name = std::string(name)}, c);
  }
  const Tokenizer* tokenizer = engine.tokenizer();
  info.set_bos_token_id(tokenizer != nullptr ? tokenizer->bos_id() : -1);
  info.set_eos_token_id(tokenizer != nullptr ? tokenizer->eos_id() : -1);
  info.set_synthetic_weights(engine.loaded.model.format == "synthetic");
  return info;
}

}  // namespace kvserve::server
