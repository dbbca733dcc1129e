#pragma once

#include <memory>

#include "engine/kv/kv_policy.h"
#include "engine/kv/kv_policy_options.h"
#include "engine/runtime/loaded_engine.h"
#include "engine/scheduler/engine_core.h"
#include "server/request_validation.h"
#include "server/write_dispatcher.h"

namespace kvserve::server {

// The loaded model and the scheduler serving it: what the service needs once loading is done.
// Built on the main thread, published to the gRPC threads once complete, destroyed only after the
// gRPC server has shut down.
struct ServingEngine {
  LoadedEngine loaded;  // config, tokenizer, chat template; the backend running the weights
  KvPolicyOptions default_kv_policy;
  // The scheduler's page size, which tiered requests must use.
  int kv_page_size = kDefaultKvPageSize;
  // Before the scheduler: destroyed after it, so no engine callback posts to a dispatcher gone.
  std::unique_ptr<WriteDispatcher> writes = std::make_unique<WriteDispatcher>();
  std::unique_ptr<EngineCore> scheduler;
  RequestLimits limits;     // the server's caps on request fields
  int max_token_bytes = 0;  // the tokenizer's longest token (MaxTokenBytes), set at load

  const ModelConfig& config() const { return loaded.model.config; }
  const Tokenizer* tokenizer() const { return loaded.model.tokenizer.get(); }
  RequestContext request_context() const {
    return {.config = loaded.model.config,
            .tokenizer = loaded.model.tokenizer.get(),
            .chat_template = loaded.model.chat_template,
            .default_kv_policy = default_kv_policy,
            .limits = &limits,
            .max_token_bytes = max_token_bytes,
            .kv_page_size = kv_page_size};
  }
};

}  // namespace kvserve::server
