#pragma once

#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace kvserve {

// --gpu-memory-fraction, as kvserve-cli, kvserve-engine-bench and kvserve-gpu-bench take it: the
// CUDA backend's share of the device's free memory, in (0, 1]. Accepted in builds without CUDA
// (and then unused), so scripts need not know which build they drive. CLI::PositiveNumber &
// CLI::Range would say the same with DBL_MAX spelled out in the message; this one names the range.
inline CLI::Option* AddGpuMemoryFractionOption(CLI::App& app, double& fraction) {
  const CLI::Validator in_range(
      [](std::string& text) -> std::string {
        double v = 0;
        if (absl::SimpleAtod(text, &v) && v > 0 && v <= 1) return {};
        return absl::StrCat("'", text, "' is not a fraction in (0, 1]");
      },
      "FRACTION");
  return app
      .add_option("--gpu-memory-fraction", fraction,
                  "CUDA backend: share of free device memory for weights, KV and scratch")
      ->check(in_range)
      ->capture_default_str();
}

}  // namespace kvserve
