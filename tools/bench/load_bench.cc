// kvserve-bench: a load generator for a running kvserve server. For each concurrency level it keeps
// that many streamed Generate requests in flight until --requests are done, and prints one JSON
// object: TTFT, inter-token latency, end-to-end latency, streamed tokens/s. With --compare-offline
// it also runs the same prompts through the engine in-process (BatchGenerator, batches of the same
// size) and reports the ratio server/offline.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "CLI/CLI.hpp"
#include "engine/runtime/loaded_engine.h"
#include "engine/scheduler/batch_generator.h"
#include "kvserve/v1/inference.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tools/bench/latency_summary.h"
#include "tools/bench/streamed_request.h"

namespace kvserve::bench {
namespace {

namespace pb = kvserve::v1;
using Clock = std::chrono::steady_clock;

struct LoadBenchOptions {
  std::string server;
  std::vector<int> concurrency = {1, 16};
  int requests = 64;  // per level (at least the concurrency)
  int prompt_tokens = 128;
  int max_tokens = 64;
  std::string kv_policy;  // empty: the server's default
  uint64_t seed = 1234;
  int warmup = 4;
  double timeout_s = 0;
  bool compare_offline = false;
  std::string model;
  std::string tokenizer;
  std::string backend = "cpu";
  int threads = 0;
};

// Streams per HTTP/2 connection: more concurrent streams open more channels.
constexpr int kStreamsPerChannel = 32;

int Fail(const std::string& message) {
  std::cerr << "kvserve-bench: error: " << message << "\n";
  return 1;
}

std::shared_ptr<grpc::Channel> OpenChannel(const std::string& server, int index) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
  args.SetInt("kvserve.bench.channel_index", index);
  return grpc::CreateCustomChannel(server, grpc::InsecureChannelCredentials(), args);
}

std::vector<std::vector<int32_t>> RandomPrompts(uint64_t seed, int count, int length, int vocab) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> dist(3, vocab - 1);
  std::vector<std::vector<int32_t>> prompts(count, std::vector<int32_t>(length));
  for (auto& p : prompts) {
    for (int32_t& t : p) t = dist(rng);
  }
  return prompts;
}

pb::GenerateRequest MakeRequest(const LoadBenchOptions& o, const std::vector<int32_t>& prompt) {
  pb::GenerateRequest r;
  r.mutable_token_ids()->mutable_ids()->Add(prompt.begin(), prompt.end());
  r.mutable_sampling()->set_max_new_tokens(static_cast<uint32_t>(o.max_tokens));
  r.mutable_sampling()->set_temperature(0.0f);
  r.mutable_sampling()->set_ignore_eos(true);
  r.mutable_kv_policy()->set_name(o.kv_policy);
  return r;
}

struct LevelResult {
  nlohmann::json json;
  double tokens_per_s = 0;
};

// Keeps `concurrency` streams in flight until every prompt has been sent.
LevelResult RunServerLevel(const LoadBenchOptions& o, int concurrency,
                           const std::vector<std::vector<int32_t>>& prompts) {
  std::vector<std::unique_ptr<pb::Inference::Stub>> stubs;
  for (int i = 0; i < (concurrency + kStreamsPerChannel - 1) / kStreamsPerChannel; ++i) {
    stubs.push_back(pb::Inference::NewStub(OpenChannel(o.server, i)));
  }
  std::vector<StreamedRequestTiming> timings(prompts.size());
  std::atomic<size_t> next{0};
  const auto start = Clock::now();
  std::vector<std::thread> workers;
  for (int w = 0; w < concurrency; ++w) {
    workers.emplace_back([&, w] {
      pb::Inference::Stub& stub = *stubs[w / kStreamsPerChannel];
      for (size_t i = next++; i < prompts.size(); i = next++) {
        timings[i] = RunStreamedRequest(stub, MakeRequest(o, prompts[i]), o.timeout_s);
      }
    });
  }
  for (auto& t : workers) t.join();
  const double duration_s = std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<double> ttft, itl, e2e, server_ttft;
  std::map<std::string, int> errors;
  int64_t tokens = 0;
  int completed = 0;
  for (const StreamedRequestTiming& t : timings) {
    tokens += t.tokens;
    if (!t.ok) {
      ++errors[t.error];
      continue;
    }
    ++completed;
    ttft.push_back(t.ttft_ms);
    e2e.push_back(t.e2e_ms);
    server_ttft.push_back(t.server_ttft_ms);
    itl.insert(itl.end(), t.itl_ms.begin(), t.itl_ms.end());
  }
  LevelResult result;
  result.tokens_per_s = tokens / duration_s;
  result.json = {{"concurrency", concurrency},
                 {"requests", prompts.size()},
                 {"completed", completed},
                 {"failed", prompts.size() - completed},
                 {"duration_s", duration_s},
                 {"output_tokens", tokens},
                 {"output_tokens_per_s", result.tokens_per_s},
                 {"requests_per_s", completed / duration_s},
                 {"ttft_ms", SummarizeLatencies(ttft)},
                 {"server_ttft_ms", SummarizeLatencies(server_ttft)},
                 {"itl_ms", SummarizeLatencies(itl)},
                 {"e2e_ms", SummarizeLatencies(e2e)}};
  if (!errors.empty()) result.json["errors"] = errors;
  return result;
}

// The same prompts through BatchGenerator in batches of `concurrency`: generated tokens per second
// of wall time, prefill included.
absl::StatusOr<double> RunOfflineLevel(Backend& backend, const LoadBenchOptions& o,
                                       const std::string& policy, int concurrency,
                                       const std::vector<std::vector<int32_t>>& prompts) {
  BatchGenerator generator(backend, {.prefill_chunk_tokens = 2048, .eos_id = -1});
  int64_t tokens = 0;
  const auto start = Clock::now();
  for (size_t first = 0; first < prompts.size(); first += concurrency) {
    std::vector<GenerationRequest> batch;
    for (size_t i = first; i < std::min(prompts.size(), first + concurrency); ++i) {
      GenerationRequest r{.prompt = prompts[i], .max_new_tokens = o.max_tokens};
      r.ignore_eos = true;
      r.kv_policy.name = policy;
      batch.push_back(std::move(r));
    }
    auto results = generator.Generate(batch);
    if (!results.ok()) return results.status();
    for (const GenerationResult& g : *results) tokens += static_cast<int64_t>(g.tokens.size());
  }
  return tokens / std::chrono::duration<double>(Clock::now() - start).count();
}

int Run(const LoadBenchOptions& o) {
  pb::ModelInfo info;
  {
    grpc::ClientContext context;
    context.set_wait_for_ready(true);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    const auto stub = pb::Inference::NewStub(OpenChannel(o.server, -1));
    if (grpc::Status s = stub->GetModelInfo(&context, {}, &info); !s.ok()) {
      return Fail("GetModelInfo on " + o.server + ": " + s.error_message());
    }
  }
  if (o.prompt_tokens + o.max_tokens > static_cast<int>(info.context_length())) {
    return Fail("--prompt-tokens + --max-tokens exceed the model's context of " +
                std::to_string(info.context_length()));
  }
  const nlohmann::json common = {
      {"bench", "load"},
      {"server", o.server},
      {"model", info.model()},
      {"weights", info.synthetic_weights() ? "synthetic" : "real"},
      {"backend", info.backend()},
      {"kv_policy", o.kv_policy.empty() ? info.default_kv_policy() : o.kv_policy},
      {"prompt_tokens", o.prompt_tokens},
      {"max_tokens", o.max_tokens},
      {"client_host_threads", std::thread::hardware_concurrency()}};

  // Warm the server up (first-touch allocations, thread pools) outside the measurement.
  if (o.warmup > 0) {
    RunServerLevel(o, std::min(o.warmup, 4),
                   RandomPrompts(o.seed ^ 0xfeed, o.warmup, o.prompt_tokens, info.vocab_size()));
  }

  // The offline engine is loaded up front; its worker threads sleep while the server runs.
  std::optional<LoadedEngine> engine;
  if (o.compare_offline) {
    auto loaded = LoadEngine({.model = o.model, .tokenizer = o.tokenizer}, o.backend, o.threads);
    if (!loaded.ok()) return Fail(std::string(loaded.status().message()));
    engine = *std::move(loaded);
  }
  for (size_t level = 0; level < o.concurrency.size(); ++level) {
    const int c = o.concurrency[level];
    const auto prompts =
        RandomPrompts(o.seed + level, std::max(o.requests, c), o.prompt_tokens, info.vocab_size());
    const LevelResult served = RunServerLevel(o, c, prompts);
    nlohmann::json j = common;
    j.update(served.json);
    if (engine) {
      // Right after the server's run of the same batch, so both see the same machine.
      auto offline =
          RunOfflineLevel(*engine->backend, o, common["kv_policy"].get<std::string>(), c, prompts);
      if (!offline.ok()) return Fail(std::string(offline.status().message()));
      j["offline_model"] = o.model;
      j["offline_tokens_per_s"] = *offline;
      j["server_vs_offline"] = served.tokens_per_s / *offline;
    }
    std::cout << j.dump() << std::endl;
  }
  return 0;
}

}  // namespace
}  // namespace kvserve::bench

int main(int argc, char** argv) {
  kvserve::bench::LoadBenchOptions o;
  CLI::App app{"kvserve-bench: load generator for a running kvserve server, JSON per level"};
  app.add_option("--server", o.server, "HOST:PORT of the server")->required();
  app.add_option("--concurrency", o.concurrency, "streams in flight, one level each (1,16,256)")
      ->delimiter(',')
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--requests", o.requests, "requests per level (at least the concurrency)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--prompt-tokens", o.prompt_tokens, "random prompt ids per request")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-tokens", o.max_tokens, "tokens generated per request (EOS ignored)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--kv-policy", o.kv_policy, "KV policy (default: the server's)");
  app.add_option("--seed", o.seed, "prompt seed")->capture_default_str();
  app.add_option("--warmup", o.warmup, "unmeasured requests first")->capture_default_str();
  app.add_option("--timeout", o.timeout_s, "per-request deadline in seconds (0 = none)");
  auto* compare = app.add_flag("--compare-offline", o.compare_offline,
                               "also run the prompts through the engine in-process");
  app.add_option("--model", o.model, "model for --compare-offline (the server's)")->needs(compare);
  app.add_option("--tokenizer", o.tokenizer, "llama2.c tokenizer for --model");
  app.add_option("--backend", o.backend, "backend for --compare-offline")->capture_default_str();
  app.add_option("--threads", o.threads, "CPU backend threads for --compare-offline (0 = all)");
  CLI11_PARSE(app, argc, argv);
  if (o.compare_offline && o.model.empty()) {
    std::cerr << "kvserve-bench: error: --compare-offline needs --model\n";
    return 1;
  }
  return kvserve::bench::Run(o);
}
