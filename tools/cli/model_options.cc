#include "tools/cli/model_options.h"

#include <iostream>

#include "engine/model/model_loader.h"
#include "engine/runtime/backend_factory.h"

namespace kvserve::cli {

void AddModelOptions(CLI::App& app, ModelOptions& o, bool with_backend) {
  app.add_option("--model", o.model, "GGUF file, llama2.c checkpoint, or synthetic:NAME")
      ->required();
  app.add_option("--tokenizer", o.tokenizer, "tokenizer file of a llama2.c checkpoint");
  app.add_option("--synthetic-seed", o.synthetic_seed, "seed of synthetic:NAME weights");
  if (with_backend) {
    app.add_option("--backend", o.backend, "cpu or cuda")->capture_default_str();
  }
}

absl::StatusOr<Engine> LoadEngine(const ModelOptions& o, bool with_backend) {
  auto model =
      LoadModel({.model = o.model, .tokenizer = o.tokenizer, .synthetic_seed = o.synthetic_seed});
  if (!model.ok()) return model.status();
  Engine engine{.model = std::move(*model), .backend = nullptr};
  if (with_backend) {
    auto backend = CreateBackend(o.backend, engine.model.config, std::move(engine.model.weights));
    if (!backend.ok()) return backend.status();
    engine.backend = std::move(*backend);
  }
  return engine;
}

int Fail(const absl::Status& status) {
  std::cerr << "kvserve-cli: error: " << status.message() << "\n";
  return 1;
}

}  // namespace kvserve::cli
