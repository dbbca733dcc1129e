#include "server/server_runner.h"

#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/kv/page_pool.h"
#include "engine/model/chat_template.h"
#include "engine/model/model_loader.h"
#include "engine/runtime/default_kv_policy.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/impl/server_builder_option.h"
#include "grpcpp/impl/server_builder_plugin.h"
#include "server/api_keys.h"
#include "server/grpc_credentials.h"
#include "server/malformed_request_interceptor.h"
#include "server/request_limits.h"
#include "spdlog/spdlog.h"

namespace kvserve::server {
namespace {

// How long in-flight RPCs get once the engine has stopped (their last messages are on the way).
constexpr auto kGrpcShutdownGrace = std::chrono::seconds(3);
const std::string kServiceName = v1::Inference::service_full_name();

// host:port, with an IPv6 literal bracketed.
std::string Address(const std::string& host, int port) {
  const bool ipv6 = host.find(':') != std::string::npos && host.front() != '[';
  return ipv6 ? absl::StrCat("[", host, "]:", port) : absl::StrCat(host, ":", port);
}

std::string Buckets(const std::vector<double>& buckets) {
  return buckets.empty() ? "default" : absl::StrJoin(buckets, ",");
}

const char* ChatTemplateStyle(const std::string& source) {
  switch (ChatTemplate(source).style()) {
    case ChatTemplate::Style::kNone:
      return "none";
    case ChatTemplate::Style::kChatMl:
      return "chatml";
    case ChatTemplate::Style::kLlama3:
      return "llama3";
    case ChatTemplate::Style::kUnsupported:
      return "unsupported";
  }
  return "unknown";
}

// gRPC's receive limit: --max-request-bytes, else what the model's context can hold (read from
// the model file's header; gRPC's 4 MiB default when that fails, and loading reports why).
int64_t ReceiveLimit(const ServerConfig& c) {
  if (c.limits.max_request_bytes > 0) return c.limits.max_request_bytes;
  auto context = ReadContextLength(
      {.model = c.model, .tokenizer = c.tokenizer, .synthetic_seed = c.synthetic_seed});
  return context.ok() ? ReceiveLimitBytes(*context) : int64_t{4} << 20;
}

// gRPC's reflection library registers its plugin for every ServerBuilder as soon as it is
// loaded; this option drops it again when --reflection is off.
class WithoutReflection final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    std::erase_if(*plugins, [](const std::unique_ptr<grpc::ServerBuilderPlugin>& plugin) {
      return absl::StrContains(plugin->name(), "reflection");
    });
  }
};

}  // namespace

ServerRunner::ServerRunner(ServerConfig config)
    : config_(std::move(config)),
      registry_(std::make_shared<prometheus::Registry>()),
      scheduler_metrics_(std::make_shared<SchedulerCollectable>()),
      metrics_(*registry_, config_.ttft_buckets, config_.itl_buckets),
      service_(std::make_unique<InferenceService>(config_, metrics_)) {}

ServerRunner::~ServerRunner() { Shutdown(); }

int ServerRunner::metrics_port() const { return exposer_ ? exposer_->port() : -1; }

absl::Status ServerRunner::Listen() {
  LogConfig();
  const SecurityConfig& security = config_.security;
  if (config_.metrics_port >= 0) {
    const std::string& host = config_.metrics_host.empty() ? config_.host : config_.metrics_host;
    auto exposer =
        MetricsEndpoint::Start(host, config_.metrics_port, {registry_, scheduler_metrics_});
    if (!exposer.ok()) {
      return absl::Status(exposer.status().code(), absl::StrCat("--metrics-host/--metrics-port: ",
                                                                exposer.status().message()));
    }
    exposer_ = *std::move(exposer);
    spdlog::info("metrics listening on {}", Address(host, exposer_->port()));
  } else {
    spdlog::info("metrics endpoint off (--metrics-port {})", config_.metrics_port);
  }

  if (!security.api_key_file.empty()) {
    auto keys = ApiKeys::Load(security.api_key_file);
    if (!keys.ok()) return keys.status();
    spdlog::info("authentication: {} API key(s) from {}", keys->size(), security.api_key_file);
    service_->SetApiKeys(*std::move(keys));
  } else {
    spdlog::warn("authentication off: any client may call every method (--api-key-file)");
  }
  auto credentials = MakeServerCredentials(security);
  if (!credentials.ok()) return credentials.status();

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  if (security.reflection) {
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  } else {
    builder.SetOption(std::make_unique<WithoutReflection>());
  }
  builder.AddListeningPort(Address(config_.host, config_.port), *credentials, &grpc_port_);
  builder.RegisterService(service_.get());
  // A prompt can be no longer than the context holds: nothing larger is even received.
  const int64_t receive_limit = ReceiveLimit(config_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(receive_limit));
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<MalformedRequestInterceptorFactory>());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  // A non-streaming request may send no data for a long time: accept the clients' keepalive
  // pings meanwhile (as vLLM's gRPC server does).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || grpc_port_ == 0) {
    server_.reset();
    return absl::UnavailableError(
        absl::StrCat("--port: cannot listen on ", Address(config_.host, config_.port)));
  }
  // "" (the process) serves from now on; the inference service once the model is ready.
  server_->GetHealthCheckService()->SetServingStatus(kServiceName, false);
  spdlog::info("gRPC: {}{}, receive limit {}, reflection {}", security.tls() ? "TLS" : "plaintext",
               security.tls_client_ca.empty() ? "" : " with client certificates required",
               FormatBytes(receive_limit), security.reflection ? "on" : "off");
  spdlog::info("gRPC listening on {}", Address(config_.host, grpc_port_));
  return absl::OkStatus();
}

absl::Status ServerRunner::LoadModel() {
  spdlog::info("loading model {}", config_.model);
  const auto started = std::chrono::steady_clock::now();
  auto loaded = LoadEngine({.model = config_.model,
                            .tokenizer = config_.tokenizer,
                            .synthetic_seed = config_.synthetic_seed,
                            .weights_dtype = config_.weights_dtype},
                           config_.backend, config_.threads, config_.gpu_memory_fraction,
                           config_.kv_dtype, config_.cuda_graphs);
  if (!loaded.ok()) return loaded.status();

  auto engine = std::make_unique<ServingEngine>();
  engine->loaded = *std::move(loaded);
  absl::StatusOr<KvPolicyOptions> default_policy =
      ResolveDefaultKvPolicy(config_.default_kv_policy, config_.page_size, *engine->loaded.backend);
  if (!default_policy.ok()) {
    return absl::Status(default_policy.status().code(),
                        absl::StrCat("--default-kv-policy: ", default_policy.status().message()));
  }
  engine->default_kv_policy = *std::move(default_policy);
  engine->kv_page_size = config_.page_size;
  const Tokenizer* tokenizer = engine->tokenizer();
  engine->limits = config_.limits;
  engine->max_token_bytes = tokenizer != nullptr ? MaxTokenBytes(*tokenizer) : 0;
  SchedulerOptions options{
      .max_batch_tokens = config_.max_batch_tokens,
      .max_running = config_.max_running,
      .max_queued_requests = config_.max_queued_requests,
      .max_queued_prompt_tokens = config_.max_queued_prompt_tokens,
      .page_size = config_.page_size,
      .kv_cache_bytes = config_.kv_cache_memory,
      .kv_host_bytes = config_.kv_host_memory,
      .eos_id = tokenizer != nullptr ? tokenizer->eos_id() : -1,
      .default_kv_policy = engine->default_kv_policy,
  };
  engine->scheduler =
      std::make_unique<EngineCore>(*engine->loaded.backend, tokenizer, std::move(options));
  engine->scheduler->Start();
  engine_ = std::move(engine);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  spdlog::info("model loaded in {:.2f} s", seconds);
  LogEngine();

  scheduler_metrics_->SetScheduler(engine_->scheduler.get());
  service_->SetEngine(engine_.get());
  SetReady(true);
  spdlog::info("ready: {} SERVING", kServiceName);
  return absl::OkStatus();
}

void ServerRunner::Drain(std::chrono::duration<double> timeout,
                         const std::function<bool()>& stop_waiting) {
  SetReady(false);
  service_->BeginDrain();
  if (engine_ == nullptr) {
    spdlog::info("draining: no model loaded, nothing to wait for");
    return;
  }
  engine_->scheduler->BeginDrain();
  SchedulerStatus s = engine_->scheduler->status();
  spdlog::info(
      "draining: readiness NOT_SERVING, new requests refused; waiting up to {:.1f} s for "
      "{} running and {} waiting requests",
      timeout.count(), s.running, s.waiting);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (s.running + s.waiting > 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      spdlog::warn("drain timeout: {} running and {} waiting requests will be cancelled", s.running,
                   s.waiting);
      return;
    }
    if (stop_waiting && stop_waiting()) {
      spdlog::warn("second signal: {} running and {} waiting requests will be cancelled", s.running,
                   s.waiting);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    s = engine_->scheduler->status();
  }
  spdlog::info("drained: no request left");
}

void ServerRunner::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  SetReady(false);
  service_->BeginDrain();
  if (engine_ != nullptr) {
    spdlog::info("stopping the engine (cancelling what is left)");
    engine_->scheduler->Stop();
  }
  if (server_ != nullptr) {
    spdlog::info("stopping gRPC (grace {} s)", kGrpcShutdownGrace.count());
    server_->Shutdown(std::chrono::system_clock::now() + kGrpcShutdownGrace);
    server_->Wait();
  }
  if (exposer_ != nullptr) {
    spdlog::info("stopping the metrics endpoint");
    exposer_.reset();
  }
  scheduler_metrics_->SetScheduler(nullptr);
  // Reactors are gone (the server is down), so nothing reaches the engine any more.
  server_.reset();
  engine_.reset();
  spdlog::info("stopped");
}

void ServerRunner::SetReady(bool ready) {
  if (server_ == nullptr) return;
  server_->GetHealthCheckService()->SetServingStatus(kServiceName, ready && engine_ != nullptr);
}

void ServerRunner::LogConfig() const {
  const ServerConfig& c = config_;
  spdlog::info(
      "kvserve starting: model={} tokenizer={} host={} port={} metrics_host={} metrics_port={} "
      "backend={} "
      "threads={} max_batch_tokens={} max_running={} max_queued_requests={} "
      "max_queued_prompt_tokens={} page_size={} kv_cache_memory={} kv_host_memory={} "
      "default_kv_policy={} "
      "drain_timeout={}s log_format={} log_level={} stream_buffer={} ttft_buckets={} "
      "itl_buckets={}",
      c.model, c.tokenizer.empty() ? "-" : c.tokenizer, c.host, c.port,
      c.metrics_host.empty() ? c.host : c.metrics_host, c.metrics_port, c.backend, c.threads,
      c.max_batch_tokens, c.max_running, c.max_queued_requests, c.max_queued_prompt_tokens,
      c.page_size, FormatBytes(c.kv_cache_memory), FormatBytes(c.kv_host_memory),
      c.default_kv_policy, c.drain_timeout_s, c.log_format, c.log_level, c.stream_buffer,
      Buckets(c.ttft_buckets), Buckets(c.itl_buckets));
}

void ServerRunner::LogEngine() const {
  const LoadedModel& model = engine_->loaded.model;
  const ModelConfig& c = model.config;
  spdlog::info(
      "model: {} ({}{}) architecture={} layers={} dim={} heads={} kv_heads={} head_dim={} "
      "ffn_dim={} vocab={} context={} parameters={}",
      c.name.empty() ? config_.model : c.name, model.format,
      model.format == "synthetic" ? ", synthetic weights" : "", c.architecture, c.n_layers, c.dim,
      c.n_heads, c.n_kv_heads, c.head_dim, c.ffn_dim, c.vocab_size, c.context_length,
      c.num_parameters());
  if (const Tokenizer* tok = model.tokenizer.get()) {
    spdlog::info("tokenizer: vocab={} bos={} eos={} add_bos={} chat_template={}", tok->vocab_size(),
                 tok->bos_id(), tok->eos_id(), tok->add_bos(),
                 ChatTemplateStyle(model.chat_template));
  } else {
    spdlog::info("tokenizer: none (token-id prompts only)");
  }
  const EngineCore& scheduler = *engine_->scheduler;
  const SchedulerStatus s = scheduler.status();
  const KvPageShape page{
      .n_kv_heads = c.n_kv_heads, .page_size = s.page_size, .head_dim = c.head_dim};
  const Backend& backend = *engine_->loaded.backend;
  const int64_t device_page = static_cast<int64_t>(page.bytes(backend.kv_element_bytes()));
  const int64_t host_page = static_cast<int64_t>(page.bytes(backend.kv_host_element_bytes()));
  spdlog::info(
      "backend: {}; KV in {}; KV pool: {} pages of {} tokens x {} KV heads ({} bytes each, {} in "
      "all); host tier: {} pages ({}); max concurrency at full context: {:.1f}",
      backend.name(), KvDtypeName(backend.kv_dtype()), s.pages_total, s.page_size, c.n_kv_heads,
      device_page, FormatBytes(device_page * s.pages_total), s.host_pages_total,
      FormatBytes(host_page * s.host_pages_total), scheduler.max_concurrency_at_full_context());
}

}  // namespace kvserve::server
