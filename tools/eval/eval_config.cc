#include "tools/eval/eval_config.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace kvserve::eval {

namespace {

// The default's proportions (2048 = 512 sink + 512 recent + 1024 retrieved), whole pages, or
// `sink_recent` tokens each where set (FreeKV's long-input setting: 128); a `sink` of its own
// where set.
void SetTieredBudget(TieredOptions& o, int budget, const EvalConfig& config) {
  o.budget = budget;
  auto pages = [&o](int tokens) {
    return std::max(o.page_size, tokens / o.page_size * o.page_size);
  };
  o.recent = pages(config.sink_recent > 0 ? config.sink_recent : budget / 4);
  o.sink = config.sink > 0 ? pages(config.sink) : o.recent;
}

}  // namespace

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

std::vector<std::string> SuiteConfigLabels() {
  return {"full",
          "snapkv",
          "fastkv",
          "fastkv-r0.25",
          "fastkv-512",
          "quest-r0.25",
          "quest-r0.25+mad",
          "freekv-r0.25",
          "freekv-r0.25+minmax",
          "fastkv_freekv-r0.25",
          "fastkv_freekv-r0.25+minmax",
          "fastkv_freekv-512",
          "freekv-r0.25k32",
          "quest-r0.25k4p4",
          "freekv-r0.25k4p4"};
}

std::vector<std::string> QuickConfigLabels() {
  return {"full",
          "snapkv",
          "fastkv",
          "fastkv-r0.25",
          "quest-r0.25",
          "freekv-r0.25",
          "freekv-r0.25+minmax",
          "fastkv_freekv-r0.25",
          "freekv-r0.25k4p4"};
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
  absl::StatusOr<KvPolicyKind> kind = ParseKvPolicyKind(label.substr(0, dash));
  if (!kind.ok()) return bad();
  config.options = DefaultKvPolicyOptions(*kind);
  if (*kind == KvPolicyKind::kFull) {
    if (dash != std::string::npos) return bad();
    return config;
  }
  const bool tiered = IsTiered(*kind);
  if (*kind != KvPolicyKind::kSnapKv && *kind != KvPolicyKind::kFastKv && !tiered) return bad();
  // Each option the label names is one the policy has (the grammar above keeps them apart).
  auto set = [&config](std::string_view name, KvOptionValue value) {
    return SetKvOption(config.options, name, value).ok();
  };
  if (dash != std::string::npos) {
    std::string budget_text = label.substr(dash + 1);
    bool tsp_named = false;
    if (!tiered) {
      // [BUDGET|rRATIO][tTSP][wWINDOW][avg]
      const size_t before = budget_text.size();
      if (budget_text.ends_with("avg")) {
        set("pool", ScorePooling::kAvg);
        budget_text.resize(budget_text.size() - 3);
      }
      if (const size_t w = budget_text.find('w'); w != std::string::npos) {
        int window = 0;
        if (!absl::SimpleAtoi(budget_text.substr(w + 1), &window) || window <= 0) return bad();
        set("window", window);
        budget_text.resize(w);
      }
      if (const size_t t = budget_text.find('t'); t != std::string::npos) {
        float tsp = 0;
        if (!absl::SimpleAtof(budget_text.substr(t + 1), &tsp)) return bad();
        if (!set("tsp_rate", tsp)) return bad();  // snapkv has no TSP
        tsp_named = true;
        budget_text.resize(t);
      }
      if (budget_text.empty() && before > 0) return config;
    }
    if (tiered) {
      // ...+mean, +max, +mad, +minmax: page scoring variants (experiment_policies.h).
      if (const size_t plus = budget_text.find('+'); plus != std::string::npos) {
        config.experiment = budget_text.substr(plus + 1);
        budget_text.resize(plus);
        for (const absl::string_view part : absl::StrSplit(config.experiment, '+')) {
          if (part != "mean" && part != "max" && part != "mad" && part != "minmax") return bad();
        }
      }
      // ...dN: the first N layers decode densely (experiment_policies.h).
      if (const size_t d = budget_text.find('d'); d != std::string::npos) {
        int dense = 0;
        if (!absl::SimpleAtoi(budget_text.substr(d + 1), &dense) || dense <= 0) return bad();
        config.experiment =
            absl::StrCat("dense", dense, config.experiment.empty() ? "" : "+", config.experiment);
        budget_text.resize(d);
      }
      // NAME-BUDGET[pPAGE][tTAU]: another page size (the selection unit) or correction threshold.
      if (const size_t t = budget_text.find('t'); t != std::string::npos) {
        float tau = 0;
        if (!absl::SimpleAtof(budget_text.substr(t + 1), &tau)) return bad();
        if (!set("tau", tau)) return bad();  // quest has no tau
        budget_text.resize(t);
      }
      if (const size_t p = budget_text.find('p'); p != std::string::npos) {
        int page = 0;
        if (!absl::SimpleAtoi(budget_text.substr(p + 1), &page) || page <= 0) return bad();
        set("page_size", page);
        budget_text.resize(p);
      }
      // NAME-BUDGET[sS][kK]: a sink of K tokens alone.
      if (const size_t k = budget_text.find('k'); k != std::string::npos) {
        int tokens = 0;
        if (!absl::SimpleAtoi(budget_text.substr(k + 1), &tokens) || tokens <= 0) return bad();
        config.sink = tokens;
        budget_text.resize(k);
      }
      // NAME-BUDGET[sS]: sink = recent = S tokens instead of a quarter of the budget each.
      if (const size_t sr = budget_text.find('s'); sr != std::string::npos) {
        int tokens = 0;
        if (!absl::SimpleAtoi(budget_text.substr(sr + 1), &tokens) || tokens <= 0) return bad();
        config.sink_recent = tokens;
        budget_text.resize(sr);
      }
    }
    if (budget_text.starts_with("r")) {
      float ratio = 0;
      if (!absl::SimpleAtof(budget_text.substr(1), &ratio) || ratio <= 0 || ratio > 1) {
        return bad();
      }
      config.ratio = ratio;
      if (!tiered) {
        set("retain_rate", ratio);
        auto* fastkv = std::get_if<FastKvOptions>(&config.options);
        if (fastkv != nullptr && !tsp_named) fastkv->tsp_rate = std::max(fastkv->tsp_rate, ratio);
      }
      return config;
    }
    int budget = 0;
    if (!absl::SimpleAtoi(budget_text, &budget) || budget <= 0) return bad();
    set("budget", budget);
    if (tiered) SetTieredBudget(*TieredOptionsOf(config.options), budget, config);
  }
  return config;
}

std::optional<KvPolicyOptions> ForPrompt(const EvalConfig& config, int prompt_tokens) {
  KvPolicyOptions options = config.options;
  TieredOptions* tiered = TieredOptionsOf(options);
  if (tiered == nullptr) return options;
  TieredOptions& o = *tiered;
  if (config.ratio > 0) {
    const int budget = static_cast<int>(config.ratio * prompt_tokens) / o.page_size * o.page_size;
    SetTieredBudget(o, std::max(budget, 4 * o.page_size), config);
  }
  const int budget = o.budget > 0 ? o.budget : kDefaultTieredBudget;
  if (budget >= prompt_tokens) return std::nullopt;
  return options;
}

}  // namespace kvserve::eval
