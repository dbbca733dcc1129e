// kvserve-engine-bench: prefill and decode throughput of the engine alone (no server), as JSON.
// With several --kv-policy values, prefills are timed for each on the same prompts, interleaved,
// and a comparison line per length sets the measured speedup over `full` beside the FLOP model's
// (engine/kv/prefill_flops.h: predicted = 1 / the policy's prefill_flops_fraction). Prefill lines
// carry wall time (the engine's prefill_ms) and the process's CPU time for the one-token request;
// on a shared machine the CPU-time ratio is the steadier of the two.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <iostream>
#include <map>
#include <random>
#include <thread>

#include "CLI/CLI.hpp"
#include "engine/kv/snapkv_selection.h"
#include "engine/runtime/loaded_engine.h"
#include "engine/scheduler/batch_generator.h"
#include "nlohmann/json.hpp"
#include "tools/common/gpu_memory_fraction_option.h"
#include "tools/common/kv_prefill_options.h"

namespace kvserve {
namespace {

struct BenchOptions {
  ModelSource source;
  std::string backend = "cpu";
  int threads = 0;       // CPU backend workers; 0: one per hardware thread
  std::string kv_dtype;  // "": the backend's default
  double gpu_memory_fraction = kDefaultGpuMemoryFraction;  // CUDA backend's device memory share
  std::vector<int> prefill_lengths = {512};
  std::vector<std::string> kv_policies = {"full"};  // prefill runs each, interleaved
  FastKvOptions kv;                                 // options of the non-full policies
  std::vector<int> decode_batches = {1, 8};
  int decode_context = 128;  // prompt length of each decoding sequence
  int decode_tokens = 32;
  int page_size = kDefaultKvPageSize;  // KV page size in tokens
  int repeats = 3;
};

// CPU time of the whole process, all threads: unlike wall time it barely moves when other work
// shares the cores (the backend's pool waits on condition variables; it does not spin).
double ProcessCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

std::vector<int32_t> RandomPrompt(std::mt19937& rng, int n, int vocab) {
  std::uniform_int_distribution<int32_t> dist(3, vocab - 1);
  std::vector<int32_t> ids(n);
  for (int32_t& t : ids) t = dist(rng);
  return ids;
}

int Run(const BenchOptions& o) {
  if (o.backend.empty()) {  // LoadEngine would load the model alone
    std::cerr << "kvserve-engine-bench: error: --backend is empty\n";
    return 1;
  }
  // LoadEngine: synthetic:NAME on cuda is made on the device, never as host fp32 weights.
  auto engine = LoadEngine(o.source, o.backend, o.threads, o.gpu_memory_fraction, o.kv_dtype);
  if (!engine.ok()) {
    std::cerr << "kvserve-engine-bench: error: " << engine.status().message() << "\n";
    return 1;
  }
  const ModelConfig config = engine->model.config;
  BatchGenerator generator(
      *engine->backend, {.prefill_chunk_tokens = 1 << 20, .page_size = o.page_size, .eos_id = -1});
  std::mt19937 rng(1234);
  const nlohmann::json common = {
      {"model", config.name},
      {"weights", engine->model.format == "synthetic" ? "synthetic" : "real"},
      {"backend", o.backend},
      {"weights_dtype", o.source.weights_dtype},
      {"kv_dtype", KvDtypeName(engine->backend->kv_dtype())},
      {"page_size", o.page_size},
      {"threads",
       o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency())}};

  // Prefill: best of `repeats` runs of a single prompt per policy, one generated token. Each repeat
  // draws one prompt and runs every policy on it back to back, so drift hits them alike.
  for (int len : o.prefill_lengths) {
    std::map<std::string, double> best_ms, best_cpu_ms;
    std::map<std::string, KvStats> stats;
    for (const std::string& p : o.kv_policies) best_ms[p] = best_cpu_ms[p] = 1e300;
    for (int r = 0; r < o.repeats; ++r) {
      const std::vector<int32_t> prompt = RandomPrompt(rng, len, config.vocab_size);
      for (const std::string& p : o.kv_policies) {
        GenerationRequest req{.prompt = prompt, .max_new_tokens = 1};
        req.ignore_eos = true;
        absl::StatusOr<KvPolicyOptions> kv = PrefillPolicyOptions(p, o.kv);
        if (!kv.ok()) {
          std::cerr << "kvserve-engine-bench: error: --kv-policy: " << kv.status().message()
                    << "\n";
          return 1;
        }
        req.kv_policy = *std::move(kv);
        const double cpu0 = ProcessCpuMs();
        auto res = generator.Generate(std::span(&req, 1));
        const double cpu_ms = ProcessCpuMs() - cpu0;
        if (!res.ok()) {
          std::cerr << "kvserve-engine-bench: error: " << res.status().message() << "\n";
          return 1;
        }
        best_ms[p] = std::min(best_ms[p], res->front().prefill_ms);
        best_cpu_ms[p] = std::min(best_cpu_ms[p], cpu_ms);
        stats[p] = res->front().kv;
      }
    }
    for (const std::string& p : o.kv_policies) {
      nlohmann::json j = common;
      j.update({{"bench", "prefill"},
                {"kv_policy", p},
                {"prompt_tokens", len},
                {"repeats", o.repeats},
                {"prefill_ms", best_ms[p]},
                {"prefill_cpu_ms", best_cpu_ms[p]},
                {"tokens_per_s", len * 1000.0 / best_ms[p]},
                {"prefill_flops_fraction", stats[p].prefill_flops_fraction}});
      if (p == "fastkv") j["tsp_tokens"] = stats[p].tsp_tokens;
      std::cout << j.dump() << std::endl;
    }
    if (!best_ms.contains("full")) continue;
    for (const std::string& p : o.kv_policies) {
      if (p == "full") continue;
      const double measured = best_ms["full"] / best_ms[p];
      const double measured_cpu = best_cpu_ms["full"] / best_cpu_ms[p];
      const double predicted = 1.0 / stats[p].prefill_flops_fraction;
      nlohmann::json j = common;
      j.update({{"bench", "prefill_speedup"},
                {"kv_policy", p},
                {"prompt_tokens", len},
                {"repeats", o.repeats},
                {"tsp_rate", RateAsDecimal(o.kv.tsp_rate)},
                {"retain_rate", RateAsDecimal(o.kv.retain_rate)},
                {"tsp_layer", o.kv.tsp_layer >= 0 ? o.kv.tsp_layer : config.n_layers / 2 - 1},
                {"tsp_tokens", stats[p].tsp_tokens},
                {"full_prefill_ms", best_ms["full"]},
                {"policy_prefill_ms", best_ms[p]},
                {"full_prefill_cpu_ms", best_cpu_ms["full"]},
                {"policy_prefill_cpu_ms", best_cpu_ms[p]},
                {"measured_speedup", measured},
                {"measured_speedup_cpu", measured_cpu},
                {"prefill_flops_fraction", stats[p].prefill_flops_fraction},
                {"predicted_speedup", predicted},
                {"measured_over_predicted", measured / predicted},
                {"measured_cpu_over_predicted", measured_cpu / predicted}});
      std::cout << j.dump() << std::endl;
    }
  }

  // Decode: `batch` sequences generating together; tokens/s over the decode steps only.
  for (int batch : o.decode_batches) {
    if (batch <= 0) continue;  // --decode-batches 0: prefill only
    double best = 0;
    for (int r = 0; r < o.repeats; ++r) {
      std::vector<GenerationRequest> reqs(batch);
      for (auto& req : reqs) {
        req.prompt = RandomPrompt(rng, o.decode_context, config.vocab_size);
        req.max_new_tokens = o.decode_tokens + 1;
        req.ignore_eos = true;
      }
      auto res = generator.Generate(reqs);
      if (!res.ok()) {
        std::cerr << "kvserve-engine-bench: error: " << res.status().message() << "\n";
        return 1;
      }
      double decode_ms = 0;
      for (const auto& g : *res) decode_ms = std::max(decode_ms, g.decode_ms);
      best = std::max(best, batch * o.decode_tokens * 1000.0 / decode_ms);
    }
    nlohmann::json j = common;
    j.update({{"bench", "decode"},
              {"batch", batch},
              {"context_tokens", o.decode_context},
              {"decode_tokens", o.decode_tokens},
              {"tokens_per_s", best},
              {"tokens_per_s_per_sequence", best / batch}});
    std::cout << j.dump() << std::endl;
  }
  return 0;
}

}  // namespace
}  // namespace kvserve

int main(int argc, char** argv) {
  kvserve::BenchOptions o;
  CLI::App app{"kvserve-engine-bench: engine prefill/decode throughput as JSON lines"};
  app.add_option("--model", o.source.model, "GGUF, llama2.c checkpoint or synthetic:NAME")
      ->required();
  app.add_option("--tokenizer", o.source.tokenizer, "llama2.c tokenizer (unused: prompts are ids)");
  app.add_option("--weights-dtype", o.source.weights_dtype,
                 "how weight matrices are held: stored (as in the file), f32, f16, bf16, q8_0, "
                 "q4_0, q4_1")
      ->capture_default_str();
  app.add_option(
      "--kv-dtype", o.kv_dtype,
      "how K and V are stored: f16, bf16 or f32 (empty: the backend's default, f16 on the CPU, "
      "bf16 on CUDA, which stores bf16 only)");
  app.add_option("--backend", o.backend)->capture_default_str();
  app.add_option("--threads", o.threads, "CPU backend threads (0: one per hardware thread)")
      ->capture_default_str();
  kvserve::AddGpuMemoryFractionOption(app, o.gpu_memory_fraction);
  app.add_option("--prefill-lengths", o.prefill_lengths)->delimiter(',');
  app.add_option("--kv-policy", o.kv_policies,
                 "KV policies to prefill with, comma-separated (e.g. full,fastkv); each prefill "
                 "length runs them all on the same prompts, interleaved")
      ->delimiter(',')
      ->capture_default_str();
  AddKvPrefillOptions(app, o.kv);
  app.add_option("--decode-batches", o.decode_batches, "decode batch sizes (0: no decode run)")
      ->delimiter(',');
  app.add_option("--decode-context", o.decode_context)->capture_default_str();
  app.add_option("--decode-tokens", o.decode_tokens)->capture_default_str();
  app.add_option("--page-size", o.page_size, "KV page size in tokens")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--repeats", o.repeats)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return kvserve::Run(o);
}
