#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/kv/kv_policy_options.h"
#include "engine/runtime/backend_factory.h"
#include "server/request_limits.h"
#include "server/security_config.h"

namespace CLI {
class App;  // CLI/CLI.hpp is heavy: only server_config.cc needs it
}  // namespace CLI

namespace kvserve::server {

// Everything `kvserve` is configured with. Each field is a flag (--max-batch-tokens), a key of the
// --config file (max-batch-tokens = 4096) and an environment variable (KVSERVE_MAX_BATCH_TOKENS).
struct ServerConfig {
  std::string model;  // GGUF file, llama2.c checkpoint, or synthetic:NAME
  std::string tokenizer;
  uint64_t synthetic_seed = 0;
  std::string host = "0.0.0.0";
  int port = 50051;          // 0: an ephemeral port, logged as "gRPC listening on HOST:PORT"
  int metrics_port = 9090;   // 0: ephemeral; negative: no metrics endpoint
  std::string metrics_host;  // the metrics endpoint's bind address; empty: --host
  std::string backend = "cpu";
  // How weight matrices are held (engine/model/weights_dtype.h): "stored", "f32", "q8_0", ...
  std::string weights_dtype = "stored";
  // How K and V are stored (engine/kv/kv_dtype.h): "" (the backend's default), "f16", "bf16",
  // "f32".
  std::string kv_dtype;
  int threads = 0;  // backend worker threads; 0: one per hardware thread
  double gpu_memory_fraction = kDefaultGpuMemoryFraction;  // CUDA: share of free device memory
  bool cuda_graphs = true;                                 // CUDA: decode steps replay CUDA graphs
  int max_batch_tokens = 2048;
  int max_running = 64;
  int max_queued_requests = 256;
  int64_t max_queued_prompt_tokens = int64_t{1} << 20;
  int page_size = kDefaultKvPageSize;
  int64_t kv_cache_memory = int64_t{2} << 30;  // bytes
  int64_t kv_host_memory = int64_t{8} << 30;   // bytes: the host tier (quest/freekv)
  std::string default_kv_policy = "full";
  double drain_timeout_s = 30;
  std::string log_format = "text";  // text | json
  std::string log_level = "info";
  int stream_buffer = 64;            // queued messages per stream before deltas merge
  std::vector<double> ttft_buckets;  // empty: ServerMetrics' defaults
  std::vector<double> itl_buckets;
  RequestLimits limits;     // --max-stop-strings, --max-request-bytes, ... (request_limits.h)
  SecurityConfig security;  // --tls-*, --api-key-file, --reflection
};

// Registers every flag on `app`, bound to `config`, with its environment variable and config-file
// key. Precedence: command line, then environment, then --config file, then the default.
void AddServerFlags(CLI::App& app, ServerConfig& config);

// Checks what CLI11 cannot express per flag (--max-running within --max-batch-tokens); the message
// names the flag.
absl::Status ValidateServerConfig(const ServerConfig& config);

// The outcome of reading the command line: run with the config, or exit with `exit_code` after
// printing `message` (help text on stdout for --help, a one-line error on stderr otherwise).
struct ConfigParse {
  bool run = false;
  int exit_code = 0;
  std::string message;
};
ConfigParse ParseServerConfig(std::span<const char* const> argv, ServerConfig& config);

// "2GiB"-style sizes for logs: the largest binary unit that divides evenly, else bytes.
std::string FormatBytes(int64_t bytes);

}  // namespace kvserve::server
