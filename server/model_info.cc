#include "server/model_info.h"

#include <string>

#include "server/kv_policy_conversion.h"

namespace kvserve::server {

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
  info.set_default_kv_policy(std::string(KvPolicyName(engine.default_kv_policy)));
  const KvDefaults defaults{.default_policy = engine.default_kv_policy,
                            .page_size = engine.kv_page_size};
  for (size_t i = 0; i < KvPolicyNames().size(); ++i) {
    const auto kind = static_cast<KvPolicyKind>(i);
    v1::KvPolicyInfo* policy = info.add_kv_policies();
    policy->set_name(std::string(KvPolicyName(kind)));
    *policy->mutable_defaults() = ToProto(ServerKvOptions(kind, defaults), c);
  }
  const Tokenizer* tokenizer = engine.tokenizer();
  info.set_bos_token_id(tokenizer != nullptr ? tokenizer->bos_id() : -1);
  info.set_eos_token_id(tokenizer != nullptr ? tokenizer->eos_id() : -1);
  info.set_synthetic_weights(engine.loaded.model.format == "synthetic");
  return info;
}

}  // namespace kvserve::server
