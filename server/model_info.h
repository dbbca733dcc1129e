#pragma once

#include "kvserve/v1/inference.pb.h"
#include "server/server_config.h"
#include "server/serving_engine.h"

namespace kvserve::server {

// GetModelInfo's answer: the model's shape, the serving configuration, and every KV policy with
// its defaults.
v1::ModelInfo BuildModelInfo(const ServingEngine& engine, const ServerConfig& config);

}  // namespace kvserve::server
