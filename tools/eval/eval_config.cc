#include "tools/eval/eval_config.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace kvserve::eval {

std::vector<std::string> DefaultConfigLabels() {
  return {"full",   "snapkv",     "snapkv-128", "snapkv-256", "snapkv-512",
          "fastkv", "fastkv-128", "fastkv-256", "fastkv-512"};
}

absl::StatusOr<EvalConfig> ParseEvalConfig(const std::string& label) {
  auto bad = [&label] {
    return absl::InvalidArgumentError(absl::StrCat(
        "config '", label, "' is not one of full, snapkv, snapkv-BUDGET, fastkv, fastkv-BUDGET"));
  };
  EvalConfig config{.label = label};
  const size_t dash = label.find('-');
  config.options.name = label.substr(0, dash);
  if (config.options.name == "full") {
    if (dash != std::string::npos) return bad();
    return config;
  }
  if (config.options.name != "snapkv" && config.options.name != "fastkv") return bad();
  if (dash != std::string::npos) {
    int budget = 0;
    if (!absl::SimpleAtoi(label.substr(dash + 1), &budget) || budget <= 0) return bad();
    config.options.budget = budget;
  }
  return config;
}

}  // namespace kvserve::eval
