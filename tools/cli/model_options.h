#pragma once

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "engine/runtime/loaded_engine.h"

namespace kvserve::cli {

// Which model to load and where to run it: the flags every model-using subcommand shares.
struct ModelOptions {
  std::string model;
  std::string tokenizer;
  std::string backend = "cpu";
  uint64_t synthetic_seed = 0;
  std::string weights_dtype = "stored";                    // engine/model/weights_dtype.h
  std::string kv_dtype;                                    // engine/kv/kv_dtype.h; "": default
  double gpu_memory_fraction = kDefaultGpuMemoryFraction;  // --backend cuda only
};
void AddModelOptions(CLI::App& app, ModelOptions& options, bool with_backend);

// A loaded model: its config, tokenizer and chat template, and (when asked) a backend running it.
using Engine = LoadedEngine;
absl::StatusOr<Engine> LoadEngine(const ModelOptions& options, bool with_backend);

// Prints "kvserve-cli: error: MESSAGE" to stderr and returns the exit code 1.
int Fail(const absl::Status& status);

}  // namespace kvserve::cli
