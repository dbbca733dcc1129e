// kvserve-bench: a load generator for a running kvserve server.
// Default (as `vllm bench serve`): an open-loop run of --num-prompts requests from a dataset, sent
// at --request-rate (Poisson, or gamma with --burstiness), at most --max-concurrency in flight,
// with a KV policy mix; one JSON object with vLLM's result fields; --sweep over request rates
// writes a CSV and a PNG (throughput against p99 TTFT and ITL).
// With --concurrency (closed loop): for each level it keeps that many streamed Generate requests in
// flight until --requests are done, and prints one JSON object per level. With --compare-offline
// it also runs the same prompts through the engine in-process (BatchGenerator, batches of the same
// size) and reports the ratio server/offline.
#include <grpcpp/grpcpp.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/runtime/loaded_engine.h"
#include "engine/scheduler/batch_generator.h"
#include "kvserve/v1/inference.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tools/bench/bench_dataset.h"
#include "tools/bench/latency_summary.h"
#include "tools/bench/serve_bench.h"
#include "tools/bench/streamed_request.h"
#include "tools/common/client_connection.h"
#include "tools/common/grpc_library_hold.h"

namespace kvserve::bench {
namespace {

namespace pb = kvserve::v1;
using Clock = std::chrono::steady_clock;

struct LoadBenchOptions {
  std::string server;
  ClientConnectionOptions connection;  // TLS and API key (--tls-ca, --api-key-file, ...)
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

  // Open-loop (`vllm bench serve`) mode.
  DatasetOptions dataset;
  std::string request_rate = "inf";
  double burstiness = 1.0;
  int max_concurrency = 0;
  std::string kv_policy_mix;
  std::vector<std::string> goodput;
  bool disable_tqdm = false;
  bool ignore_eos = false;
  std::vector<std::string> sweep;
  std::string sweep_csv = "kvserve-bench-sweep.csv";
  std::string sweep_png = "kvserve-bench-sweep.png";
  std::string save_result;
  int kv_budget = 0;
  int kv_sink = 0;
  int kv_recent = 0;
};

// Streams per HTTP/2 connection: more concurrent streams open more channels.
constexpr int kStreamsPerChannel = 32;

int Fail(const std::string& message) {
  std::cerr << "kvserve-bench: error: " << message << "\n";
  return 1;
}

// main checks the connection options once (OpenClientChannel's errors), so this cannot fail.
std::shared_ptr<grpc::Channel> OpenChannel(const LoadBenchOptions& o, int index) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
  args.SetInt("kvserve.bench.channel_index", index);
  return *OpenClientChannel(o.server, o.connection, args);
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
  SetKvPolicy(o.kv_policy, 0, 0, 0, *r.mutable_kv_policy());
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
    stubs.push_back(pb::Inference::NewStub(OpenChannel(o, i)));
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
      absl::StatusOr<KvPolicyKind> kind = ParseKvPolicyKind(policy);
      if (!kind.ok()) return kind.status();
      r.kv_policy = DefaultKvPolicyOptions(*kind);
      batch.push_back(std::move(r));
    }
    auto results = generator.Generate(batch);
    if (!results.ok()) return results.status();
    for (const GenerationResult& g : *results) tokens += static_cast<int64_t>(g.tokens.size());
  }
  return tokens / std::chrono::duration<double>(Clock::now() - start).count();
}

absl::StatusOr<pb::ModelInfo> FetchModelInfo(const LoadBenchOptions& o) {
  const std::string& server = o.server;
  pb::ModelInfo info;
  grpc::ClientContext context;
  context.set_wait_for_ready(true);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  const auto stub = pb::Inference::NewStub(OpenChannel(o, -1));
  if (grpc::Status s = stub->GetModelInfo(&context, {}, &info); !s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("GetModelInfo on ", server, ": ",
                     absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code())), ": ",
                     s.error_message()));
  }
  return info;
}

int RunLevels(const LoadBenchOptions& o) {
  auto fetched = FetchModelInfo(o);
  if (!fetched.ok()) return Fail(std::string(fetched.status().message()));
  const pb::ModelInfo& info = *fetched;
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

absl::StatusOr<double> ParseRate(const std::string& text) {
  if (text == "inf") return std::numeric_limits<double>::infinity();
  double rate = 0;
  if (!absl::SimpleAtod(text, &rate) || !(rate > 0)) {
    return absl::InvalidArgumentError("request rate \"" + text + "\": a positive number or inf");
  }
  return rate;
}

// vLLM's console summary, on stderr (stdout carries the JSON).
void PrintSummary(const nlohmann::json& r) {
  const auto line = [](const std::string& name, const nlohmann::json& v) {
    std::string value = v.is_number_float() ? std::to_string(v.get<double>()) : v.dump();
    std::cerr << name << std::string(name.size() < 40 ? 40 - name.size() : 1, ' ') << value << "\n";
  };
  std::cerr << "============ Serving Benchmark Result ============\n";
  for (const char* key :
       {"request_rate", "completed", "failed", "duration", "total_input_tokens",
        "total_output_tokens", "request_throughput", "request_goodput", "output_throughput",
        "total_token_throughput", "max_concurrent_requests"}) {
    line(key, r[key]);
  }
  for (const char* metric : {"ttft", "tpot", "itl", "e2el"}) {
    for (const char* stat : {"mean", "median", "p99"}) {
      const std::string key = std::string(stat) + "_" + metric + "_ms";
      line(key, r[key]);
    }
  }
  std::cerr << "==================================================\n";
}

// plot_sweep.py beside the executable (tools/bench/CMakeLists.txt copies it there).
std::string PlotScript() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return (exe.parent_path() / "kvserve-bench-plot-sweep.py").string();
}

int RunServe(const LoadBenchOptions& o) {
  auto fetched = FetchModelInfo(o);
  if (!fetched.ok()) return Fail(std::string(fetched.status().message()));
  const pb::ModelInfo& info = *fetched;
  auto slos = ParseGoodput(o.goodput);
  if (!slos.ok()) return Fail(std::string(slos.status().message()));
  std::vector<double> rates;
  for (const std::string& text :
       o.sweep.empty() ? std::vector<std::string>{o.request_rate} : o.sweep) {
    auto rate = ParseRate(text);
    if (!rate.ok()) return Fail(std::string(rate.status().message()));
    rates.push_back(*rate);
  }
  DatasetOptions dataset = o.dataset;
  dataset.seed = o.seed;
  auto requests = BuildDataset(dataset, static_cast<int>(info.vocab_size()),
                               static_cast<int>(info.context_length()));
  if (!requests.ok()) return Fail(std::string(requests.status().message()));
  if (!o.kv_policy_mix.empty()) {
    auto mix = ParsePolicyMix(o.kv_policy_mix);
    if (!mix.ok()) return Fail(std::string(mix.status().message()));
    AssignPolicies(*mix, o.seed, *requests);
  } else {
    for (BenchRequest& r : *requests) r.kv_policy = o.kv_policy;
  }

  const int max_in_flight =
      o.max_concurrency > 0 ? o.max_concurrency : static_cast<int>(requests->size());
  std::vector<std::unique_ptr<pb::Inference::Stub>> stubs;
  for (int i = 0; i < (max_in_flight + kStreamsPerChannel - 1) / kStreamsPerChannel; ++i) {
    stubs.push_back(pb::Inference::NewStub(OpenChannel(o, i)));
  }
  ServeBenchOptions serve{
      .burstiness = o.burstiness,
      .max_concurrency = o.max_concurrency,
      .seed = o.seed,
      .timeout_s = o.timeout_s,
      .ignore_eos = o.ignore_eos || dataset.name == "random" || dataset.name == "long",
      .progress = !o.disable_tqdm && isatty(STDERR_FILENO),
      .goodput = *slos,
      .kv_budget = o.kv_budget,
      .kv_sink = o.kv_sink,
      .kv_recent = o.kv_recent};
  if (o.warmup > 0) {
    // Unmeasured, outside the run: first-touch allocations and thread pools.
    std::vector<BenchRequest> warm(
        requests->begin(), requests->begin() + std::min<size_t>(o.warmup, requests->size()));
    ServeBenchOptions quiet = serve;
    quiet.progress = false;
    RunServeBench(stubs, warm, quiet);
  }

  std::vector<nlohmann::json> results;
  for (double rate : rates) {
    serve.request_rate = rate;
    nlohmann::json r = {
        {"date", absl::FormatTime("%Y%m%d-%H%M%S", absl::Now(), absl::UTCTimeZone())},
        {"backend", "kvserve"},
        {"server", o.server},
        {"model_id", info.model()},
        {"weights", info.synthetic_weights() ? "synthetic" : "real"},
        {"server_backend", info.backend()},
        {"dataset_name", dataset.name},
        {"num_prompts", requests->size()},
        {"request_rate", std::isfinite(rate) ? nlohmann::json(rate) : nlohmann::json("inf")},
        {"burstiness", o.burstiness},
        {"max_concurrency",
         o.max_concurrency > 0 ? nlohmann::json(o.max_concurrency) : nlohmann::json(nullptr)},
        {"kv_policy_mix", o.kv_policy_mix.empty()
                              ? (o.kv_policy.empty() ? info.default_kv_policy() : o.kv_policy)
                              : o.kv_policy_mix},
        {"client_host_threads", std::thread::hardware_concurrency()}};
    if (!slos->empty()) r["goodput_slos_ms"] = *slos;
    r.update(RunServeBench(stubs, *requests, serve));
    std::cout << r.dump() << std::endl;
    if (!o.disable_tqdm) PrintSummary(r);
    results.push_back(std::move(r));
  }
  if (!o.save_result.empty()) {
    std::ofstream out(o.save_result);
    out << (results.size() == 1 ? results[0] : nlohmann::json(results)).dump(2) << "\n";
    if (!out) return Fail("--save-result: cannot write " + o.save_result);
  }
  if (o.sweep.empty()) return 0;

  std::ofstream csv(o.sweep_csv);
  const std::vector<std::string> columns = {
      "request_rate",      "completed",      "failed",         "request_throughput",
      "output_throughput", "median_ttft_ms", "p99_ttft_ms",    "median_itl_ms",
      "p99_itl_ms",        "p99_tpot_ms",    "request_goodput"};
  for (size_t c = 0; c < columns.size(); ++c) csv << (c ? "," : "") << columns[c];
  csv << "\n";
  for (const nlohmann::json& r : results) {
    for (size_t c = 0; c < columns.size(); ++c) {
      const nlohmann::json& v = r[columns[c]];
      csv << (c ? "," : "") << (v.is_string() ? v.get<std::string>() : v.is_null() ? "" : v.dump());
    }
    csv << "\n";
  }
  csv.close();
  if (!csv) return Fail("--sweep-csv: cannot write " + o.sweep_csv);
  std::cerr << "kvserve-bench: sweep table in " << o.sweep_csv << "\n";
  if (o.sweep_png.empty()) return 0;
  // Debian's python3 has Debian's matplotlib (scripts/setup.sh), whatever python3 PATH finds first.
  const std::string python =
      std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  const std::string command =
      python + " '" + PlotScript() + "' '" + o.sweep_csv + "' '" + o.sweep_png + "'";
  if (std::system(command.c_str()) != 0) return Fail("plotting failed: " + command);
  std::cerr << "kvserve-bench: sweep plot in " << o.sweep_png << "\n";
  return 0;
}

}  // namespace
}  // namespace kvserve::bench

int main(int argc, char** argv) {
  const kvserve::GrpcLibraryHold grpc;  // the channels shut down before exit
  kvserve::bench::LoadBenchOptions o;
  kvserve::bench::DatasetOptions& d = o.dataset;
  CLI::App app{
      "kvserve-bench: load generator for a running kvserve server (vLLM bench serve's options "
      "and result fields; --concurrency for closed-loop levels)"};
  app.add_option("--server", o.server, "HOST:PORT of the server")->required();
  kvserve::AddClientConnectionFlags(app, o.connection);
  // Open loop, as vllm bench serve.
  app.add_option("--request-rate", o.request_rate, "requests/s (Poisson arrivals), or inf")
      ->capture_default_str();
  app.add_option("--burstiness", o.burstiness,
                 "gamma shape of the arrivals: 1 Poisson, <1 burstier, >1 steadier")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-concurrency", o.max_concurrency, "requests in flight at most (0: no cap)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--num-prompts", d.num_prompts, "requests in the run")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--dataset-name", d.name, "random | long | jsonl | sharegpt")
      ->check(CLI::IsMember({"random", "long", "jsonl", "sharegpt"}))
      ->capture_default_str();
  app.add_option("--dataset-path", d.path,
                 "jsonl: {\"prompt\", \"output_len\"} lines; sharegpt: "
                 "a ShareGPT JSON file");
  app.add_option("--random-input-len", d.random_input_len, "random: prompt tokens")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--random-output-len", d.random_output_len, "random/long: tokens to generate")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--random-range-ratio", d.random_range_ratio,
                 "random: lengths uniform in len*(1-r)..len*(1+r)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--long-min-len", d.long_min_len, "long: shortest prompt")->capture_default_str();
  app.add_option("--long-max-len", d.long_max_len, "long: longest prompt (capped by the context)")
      ->capture_default_str();
  app.add_option("--output-len", d.fixed_output_len, "tokens to generate for every request")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--kv-policy-mix", o.kv_policy_mix,
                 "per-request KV policies with weights, e.g. full:2,snapkv:1,freekv:1");
  app.add_option("--kv-budget", o.kv_budget,
                 "KV budget in tokens for every policy but full (0: the server's default)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--kv-sink", o.kv_sink, "quest/freekv/fastkv_freekv: sink tokens kept resident")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--kv-recent", o.kv_recent,
                 "quest/freekv/fastkv_freekv: recent tokens kept resident")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--goodput", o.goodput, "SLOs in ms, e.g. ttft:500 tpot:50 e2el:2000");
  app.add_flag("--ignore-eos", o.ignore_eos,
               "generate every requested token (random/long: always)");
  app.add_flag("--disable-tqdm", o.disable_tqdm, "no progress bar and summary on stderr");
  app.add_option("--sweep", o.sweep, "request rates to run one after another, e.g. 1,2,4,8,inf")
      ->delimiter(',');
  app.add_option("--sweep-csv", o.sweep_csv, "--sweep: the table")->capture_default_str();
  app.add_option("--sweep-png", o.sweep_png,
                 "--sweep: throughput against p99 TTFT and ITL (\"\": none)")
      ->capture_default_str();
  app.add_option("--save-result", o.save_result, "also write the result JSON to this file");
  // Closed loop levels (and the offline comparison).
  auto* levels = app.add_option("--concurrency", o.concurrency,
                                "closed loop: streams in flight, one level each (1,16,256)")
                     ->delimiter(',')
                     ->check(CLI::PositiveNumber);
  app.add_option("--requests", o.requests, "closed loop: requests per level")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--prompt-tokens", o.prompt_tokens, "closed loop: random prompt ids per request")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-tokens", o.max_tokens, "closed loop: tokens generated (EOS ignored)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--kv-policy", o.kv_policy, "KV policy (default: the server's)");
  app.add_option("--seed", o.seed, "dataset and arrival seed")->capture_default_str();
  app.add_option("--warmup", o.warmup, "unmeasured requests first")->capture_default_str();
  app.add_option("--timeout", o.timeout_s, "per-request deadline in seconds (0 = none)");
  auto* compare = app.add_flag("--compare-offline", o.compare_offline,
                               "closed loop: also run the prompts through the engine in-process");
  app.add_option("--model", o.model, "model for --compare-offline (the server's)")->needs(compare);
  app.add_option("--tokenizer", o.tokenizer, "llama2.c tokenizer for --model");
  app.add_option("--backend", o.backend, "backend for --compare-offline")->capture_default_str();
  app.add_option("--threads", o.threads, "CPU backend threads for --compare-offline (0 = all)");
  CLI11_PARSE(app, argc, argv);
  if (auto channel = kvserve::OpenClientChannel(o.server, o.connection); !channel.ok()) {
    std::cerr << "kvserve-bench: error: " << channel.status().message() << "\n";
    return 1;
  }
  if (o.compare_offline && o.model.empty()) {
    std::cerr << "kvserve-bench: error: --compare-offline needs --model\n";
    return 1;
  }
  if (levels->count() > 0 || o.compare_offline) return kvserve::bench::RunLevels(o);
  return kvserve::bench::RunServe(o);
}
