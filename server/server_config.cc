#include "server/server_config.h"

#include <cctype>
#include <cmath>
#include <cstdlib>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "engine/kv/kv_policy.h"

namespace kvserve::server {
namespace {

// "0.001,0.01,0.1" → ascending positive seconds; the message names what is wrong.
absl::Status ParseBuckets(const std::string& text, std::vector<double>* out) {
  std::vector<double> buckets;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    item = absl::StripAsciiWhitespace(item);
    double v = 0;
    if (!absl::SimpleAtod(item, &v) || !std::isfinite(v) || v <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", std::string(item), "' is not a positive number of seconds"));
    }
    if (!buckets.empty() && v <= buckets.back()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bounds must be ascending, got ", buckets.back(), " then ", v));
    }
    buckets.push_back(v);
  }
  if (out != nullptr) *out = std::move(buckets);
  return absl::OkStatus();
}

// A comma list of histogram bounds in seconds, checked as CLI11 reads it.
CLI::Validator BucketList() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const absl::Status s = ParseBuckets(text, nullptr);
        return s.ok() ? std::string() : std::string(s.message());
      },
      "SECONDS,...");
}

// (0, 1]: a share of the device's free memory (CLI::PositiveNumber & CLI::Range would say so with
// DBL_MAX spelled out in the message).
CLI::Validator MemoryFraction() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        double v = 0;
        if (absl::SimpleAtod(text, &v) && v > 0 && v <= 1) return std::string();
        return absl::StrCat("'", text, "' is not a fraction in (0, 1]");
      },
      "FRACTION");
}

CLI::Validator KvPolicyName() {
  std::vector<std::string> names;
  for (std::string_view name : KvPolicyNames()) names.emplace_back(name);
  return CLI::IsMember(names);
}

// KVSERVE_ and the flag's long name in capitals with '_' for '-': --max-batch-tokens →
// KVSERVE_MAX_BATCH_TOKENS.
std::string EnvName(const std::string& flag) {
  std::string env = "KVSERVE_";
  for (char c : flag.substr(2)) env += c == '-' ? '_' : static_cast<char>(std::toupper(c));
  return env;
}

}  // namespace

void AddServerFlags(CLI::App& app, ServerConfig& c) {
  // A flag given twice (or by environment and command line) takes the last value: see the
  // pre-parse callback below.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  auto add = [&app](const std::string& flag, auto& value, const std::string& help) {
    return app.add_option(flag, value, help)->envname(EnvName(flag))->capture_default_str();
  };
  app.set_config("--config", "", "TOML/INI file of flag = value lines (keys are the flag names)")
      ->envname("KVSERVE_CONFIG");

  add("--model", c.model, "GGUF file, llama2.c checkpoint, or synthetic:NAME")->required();
  add("--tokenizer", c.tokenizer, "tokenizer file of a llama2.c checkpoint");
  add("--synthetic-seed", c.synthetic_seed, "seed of synthetic:NAME weights");
  add("--weights-dtype", c.weights_dtype,
      "how weight matrices are held: stored (as in the file), f32, f16, bf16, q8_0, q4_0, q4_1");
  add("--kv-dtype", c.kv_dtype,
      "how K and V are stored: f16, bf16 or f32 (empty: the backend's default, f16 on the CPU, "
      "bf16 on CUDA, which stores bf16 only)");
  add("--host", c.host, "address the gRPC and metrics servers bind");
  add("--port", c.port, "gRPC port (0: ephemeral)")->check(CLI::Range(0, 65535));
  add("--metrics-port", c.metrics_port,
      "Prometheus /metrics HTTP port (0: ephemeral, negative: off)")
      ->check(CLI::Range(-1, 65535));
  add("--metrics-host", c.metrics_host,
      "address the metrics endpoint binds (empty: --host), e.g. 127.0.0.1 beside a sidecar");
  add("--backend", c.backend, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  add("--threads", c.threads, "backend worker threads (0: one per hardware thread)")
      ->check(CLI::NonNegativeNumber);
  add("--gpu-memory-fraction", c.gpu_memory_fraction,
      "CUDA backend: share of free device memory for weights, KV and scratch")
      ->check(MemoryFraction());
  add("--cuda-graphs", c.cuda_graphs,
      "CUDA backend: run decode steps (dense and tiered) as CUDA graphs, one per batch shape "
      "(false: launch "
      "every kernel, as vLLM's --enforce-eager)");
  add("--max-batch-tokens", c.max_batch_tokens, "tokens per engine step (decodes + prefill)")
      ->check(CLI::PositiveNumber);
  add("--max-running", c.max_running, "sequences in the running batch")->check(CLI::PositiveNumber);
  add("--max-queued-requests", c.max_queued_requests, "waiting requests before RESOURCE_EXHAUSTED")
      ->check(CLI::NonNegativeNumber);
  add("--max-queued-prompt-tokens", c.max_queued_prompt_tokens,
      "prompt tokens of waiting requests before RESOURCE_EXHAUSTED")
      ->check(CLI::PositiveNumber);
  add("--page-size", c.page_size, "KV page size in tokens")->check(CLI::Range(1, 4096));
  add("--kv-cache-memory", c.kv_cache_memory, "KV page pool budget in bytes (512MiB, 2GiB, ...)")
      ->transform(CLI::AsSizeValue(/*kb_is_1000=*/true))
      ->check(CLI::PositiveNumber)
      ->default_str("2GiB");
  add("--kv-host-memory", c.kv_host_memory,
      "host KV tier budget in bytes: the full KV of quest/freekv/fastkv_freekv requests")
      ->transform(CLI::AsSizeValue(/*kb_is_1000=*/true))
      ->check(CLI::PositiveNumber)
      ->default_str("8GiB");
  add("--default-kv-policy", c.default_kv_policy, "KV policy of requests that name none")
      ->check(KvPolicyName());
  add("--drain-timeout", c.drain_timeout_s,
      "seconds a SIGTERM waits for running requests before cancelling them")
      ->check(CLI::NonNegativeNumber);
  add("--log-format", c.log_format, "text or json (one JSON object per line)")
      ->check(CLI::IsMember({"text", "json"}));
  add("--log-level", c.log_level, "trace, debug, info, warn, error, critical or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  add("--stream-buffer", c.stream_buffer,
      "messages queued per stream before new tokens merge into the last one")
      ->check(CLI::PositiveNumber);
  for (auto [flag, buckets] :
       {std::pair{"--ttft-buckets", &c.ttft_buckets}, std::pair{"--itl-buckets", &c.itl_buckets}}) {
    app.add_option_function<std::string>(
           flag,
           // An init-capture: clang 14 cannot capture a structured binding.
           [buckets = buckets](const std::string& text) {
             if (!ParseBuckets(text, buckets).ok()) buckets->clear();  // the check reported it
           },
           "histogram bounds in seconds, comma separated (replaces the defaults)")
        ->envname(EnvName(flag))
        ->check(BucketList());
  }

  AddRequestLimitFlags(app, c.limits);
  AddSecurityFlags(app, c.security);

  // CLI11 reads the config file before the environment, so a file would beat KVSERVE_*. Adding
  // the environment's values before the command line is parsed makes the order command line >
  // environment > file (the file only fills options still unset; TakeLast lets the command line
  // override the environment).
  app.preparse_callback([&app](std::size_t) {
    for (CLI::Option* opt : app.get_options()) {
      const std::string& env = opt->get_envname();
      if (env.empty()) continue;
      const char* value = std::getenv(env.c_str());
      if (value != nullptr && *value != '\0') opt->add_result(std::string(value));
    }
  });
}

absl::Status ValidateServerConfig(const ServerConfig& c) {
  if (c.model.empty()) return absl::InvalidArgumentError("--model is empty");
  if (c.host.empty()) return absl::InvalidArgumentError("--host is empty");
  // Every running sequence decodes one token per step, so all of them must fit one step's budget.
  if (c.max_running > c.max_batch_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("--max-running (", c.max_running,
                                                   ") must not exceed --max-batch-tokens (",
                                                   c.max_batch_tokens, ")"));
  }
  return ValidateSecurityConfig(c.security);
}

ConfigParse ParseServerConfig(std::span<const char* const> argv, ServerConfig& config) {
  CLI::App app{"kvserve: gRPC LLM inference server with compressed, tiered KV caches", "kvserve"};
  AddServerFlags(app, config);
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::CallForHelp&) {
    return {.run = false, .exit_code = 0, .message = app.help()};
  } catch (const CLI::CallForAllHelp&) {
    return {.run = false, .exit_code = 0, .message = app.help("", CLI::AppFormatMode::All)};
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    for (char& ch : what) {
      if (ch == '\n') ch = ' ';
    }
    return {.run = false,
            .exit_code = e.get_exit_code() != 0 ? e.get_exit_code() : 2,
            .message = absl::StrCat("kvserve: error: ", what)};
  }
  if (absl::Status s = ValidateServerConfig(config); !s.ok()) {
    return {.run = false,
            .exit_code = 2,
            .message = absl::StrCat("kvserve: error: ", std::string(s.message()))};
  }
  return {.run = true};
}

std::string FormatBytes(int64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (unit < 4 && bytes != 0 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++unit;
  }
  return absl::StrCat(bytes, kUnits[unit]);
}

}  // namespace kvserve::server
