#include "tools/eval/eval_config.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace kvserve::eval {

std::vector<std::string> DefaultConfigLabels() {
  return {"full",   "snapkv",     "snapkv-128", "snapkv-256", "snapkv-512",
          "fastkv", "fastkv-128", "fastkv-256", "fastkv-512"};
}

std::vector<std::string> TieredConfigLabels() {
  return {"quest",
          "quest-512",
          "freekv",
          "freekv-128",
          "freekv-256",
          "freekv-512",
          "fastkv_freekv",
          "fastkv_freekv-128",
          "fastkv_freekv-256",
          "fastkv_freekv-512"};
}

absl::StatusOr<EvalConfig> ParseEvalConfig(const std::string& label) {
  auto bad = [&label] {
    return absl::InvalidArgumentError(
        absl::StrCat("config '", label,
                     "' is not one of full, NAME or NAME-BUDGET with NAME snapkv, fastkv, quest, "
                     "freekv or fastkv_freekv"));
  };
  EvalConfig config{.label = label};
  const size_t dash = label.find('-');
  config.options.name = label.substr(0, dash);
  if (config.options.name == "full") {
    if (dash != std::string::npos) return bad();
    return config;
  }
  const bool tiered = IsTieredKvPolicy(config.options.name);
  if (config.options.name != "snapkv" && config.options.name != "fastkv" && !tiered) return bad();
  if (dash != std::string::npos) {
    std::string budget_text = label.substr(dash + 1);
    if (tiered) {
      // NAME-BUDGET[pPAGE][tTAU]: another page size (the selection unit) or correction threshold.
      if (const size_t t = budget_text.find('t'); t != std::string::npos) {
        float tau = 0;
        if (!absl::SimpleAtof(budget_text.substr(t + 1), &tau)) return bad();
        config.options.tau = tau;
        budget_text.resize(t);
      }
      if (const size_t p = budget_text.find('p'); p != std::string::npos) {
        int page = 0;
        if (!absl::SimpleAtoi(budget_text.substr(p + 1), &page) || page <= 0) return bad();
        config.options.page_size = page;
        budget_text.resize(p);
      }
    }
    int budget = 0;
    if (!absl::SimpleAtoi(budget_text, &budget) || budget <= 0) return bad();
    config.options.budget = budget;
    if (tiered) {
      // The default's proportions (2048 = 512 sink + 512 recent + 1024 retrieved), whole pages.
      const int page = config.options.page_size;
      config.options.sink = std::max(page, budget / 4 / page * page);
      config.options.recent = config.options.sink;
    }
  }
  return config;
}

}  // namespace kvserve::eval
