#include "tools/cli/model_options.h"

#include <iostream>

#include "tools/common/gpu_memory_fraction_option.h"

namespace kvserve::cli {

void AddModelOptions(CLI::App& app, ModelOptions& o, bool with_backend) {
  app.add_option("--model", o.model, "GGUF file, llama2.c checkpoint, or synthetic:NAME")
      ->required();
  app.add_option("--tokenizer", o.tokenizer, "tokenizer file of a llama2.c checkpoint");
  app.add_option("--synthetic-seed", o.synthetic_seed, "seed of synthetic:NAME weights");
  if (with_backend) {
    app.add_option("--weights-dtype", o.weights_dtype,
                   "how weight matrices are held: stored (as in the file), f32, f16, bf16, q8_0, "
                   "q4_0, q4_1")
        ->capture_default_str();
    app.add_option(
        "--kv-dtype", o.kv_dtype,
        "how K and V are stored: f16, bf16 or f32 (empty: the backend's default, f16 on the CPU, "
        "bf16 on CUDA, which stores bf16 only)");
    app.add_option("--backend", o.backend, "cpu or cuda")->capture_default_str();
    AddGpuMemoryFractionOption(app, o.gpu_memory_fraction);
  }
}

absl::StatusOr<Engine> LoadEngine(const ModelOptions& o, bool with_backend) {
  return kvserve::LoadEngine({.model = o.model,
                              .tokenizer = o.tokenizer,
                              .synthetic_seed = o.synthetic_seed,
                              .weights_dtype = o.weights_dtype},
                             with_backend ? o.backend : std::string(), /*threads=*/0,
                             o.gpu_memory_fraction, o.kv_dtype);
}

int Fail(const absl::Status& status) {
  std::cerr << "kvserve-cli: error: " << status.message() << "\n";
  return 1;
}

}  // namespace kvserve::cli
