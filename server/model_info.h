#pragma once

#include "kvserve/v1/inference.pb.h"
#include "server/server_config.h"
#include "server/serving_engine.h"

namespace kvserve::server {

// The KV policy options as the API spells them (every field set).
v1::KvPolicy ToProto(const KvPolicyOptions& options, const ModelConfig& config);

// GetModelInfo's answer: the model's shape, the serving configuration, and every KV policy with
// its defaults.
v1::ModelInfo BuildModelInfo(const ServingEngine& engine, const ServerConfig& config);

}  // namespace kvserve::server
