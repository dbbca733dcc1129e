// kvserve-engine-bench: prefill and decode throughput of the engine alone (no server), as JSON.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <random>
#include <thread>

#include "CLI/CLI.hpp"
#include "engine/model/model_loader.h"
#include "engine/runtime/backend_factory.h"
#include "engine/scheduler/batch_generator.h"
#include "nlohmann/json.hpp"

namespace kvserve {
namespace {

struct BenchOptions {
  ModelSource source;
  std::string backend = "cpu";
  std::vector<int> prefill_lengths = {512};
  std::vector<int> decode_batches = {1, 8};
  int decode_context = 128;  // prompt length of each decoding sequence
  int decode_tokens = 32;
  int repeats = 3;
};

std::vector<int32_t> RandomPrompt(std::mt19937& rng, int n, int vocab) {
  std::uniform_int_distribution<int32_t> dist(3, vocab - 1);
  std::vector<int32_t> ids(n);
  for (int32_t& t : ids) t = dist(rng);
  return ids;
}

int Run(const BenchOptions& o) {
  auto model = LoadModel(o.source);
  if (!model.ok()) {
    std::cerr << "kvserve-engine-bench: error: " << model.status().message() << "\n";
    return 1;
  }
  const ModelConfig config = model->config;
  auto backend = CreateBackend(o.backend, config, std::move(model->weights));
  if (!backend.ok()) {
    std::cerr << "kvserve-engine-bench: error: " << backend.status().message() << "\n";
    return 1;
  }
  BatchGenerator generator(**backend, {.prefill_chunk_tokens = 1 << 20, .eos_id = -1});
  std::mt19937 rng(1234);
  const nlohmann::json common = {{"model", config.name},
                                 {"weights", model->format == "synthetic" ? "synthetic" : "real"},
                                 {"backend", o.backend},
                                 {"threads", std::thread::hardware_concurrency()}};

  // Prefill: best of `repeats` runs of a single prompt, one generated token.
  for (int len : o.prefill_lengths) {
    double best_ms = 1e300;
    for (int r = 0; r < o.repeats; ++r) {
      GenerationRequest req{.prompt = RandomPrompt(rng, len, config.vocab_size),
                            .max_new_tokens = 1};
      req.ignore_eos = true;
      auto res = generator.Generate(std::span(&req, 1));
      if (!res.ok()) {
        std::cerr << "kvserve-engine-bench: error: " << res.status().message() << "\n";
        return 1;
      }
      best_ms = std::min(best_ms, res->front().prefill_ms);
    }
    nlohmann::json j = common;
    j.update({{"bench", "prefill"},
              {"prompt_tokens", len},
              {"prefill_ms", best_ms},
              {"tokens_per_s", len * 1000.0 / best_ms}});
    std::cout << j.dump() << std::endl;
  }

  // Decode: `batch` sequences generating together; tokens/s over the decode steps only.
  for (int batch : o.decode_batches) {
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
  app.add_option("--backend", o.backend)->capture_default_str();
  app.add_option("--prefill-lengths", o.prefill_lengths)->delimiter(',');
  app.add_option("--decode-batches", o.decode_batches)->delimiter(',');
  app.add_option("--decode-context", o.decode_context)->capture_default_str();
  app.add_option("--decode-tokens", o.decode_tokens)->capture_default_str();
  app.add_option("--repeats", o.repeats)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return kvserve::Run(o);
}
