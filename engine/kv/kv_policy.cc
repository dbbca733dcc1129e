#include "engine/kv/kv_policy.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/kv/fastkv_policy.h"
#include "engine/kv/snapkv_policy.h"
#include "engine/kv/tiered_kv_policy.h"
#include "kernels/ceil_div.h"

namespace kvserve {
namespace {

constexpr std::array<std::string_view, 6> kNames = {"full",  "snapkv", "fastkv",
                                                    "quest", "freekv", "fastkv_freekv"};

// Keeps every token of every layer: dense attention, the baseline.
class FullPolicy : public KvPolicy {
 public:
  std::string_view name() const override { return "full"; }
};

absl::Status Bad(absl::string_view option, absl::string_view requirement, double got) {
  return absl::InvalidArgumentError(
      absl::StrCat("kv ", option, " must be ", requirement, ", got ", got));
}

// A rate in (0, 1]; NaN fails too.
bool IsRate(float r) { return r > 0.0f && r <= 1.0f; }

// Cross-checks FastKV's two modes (research/fastkv.md §10.3): the reference silently stops
// compressing after TSP when ρ > τ, and keeps every propagated row when budget > tsp_len.
absl::Status ValidateFastKvModes(const KvPolicyOptions& o) {
  if (o.budget == 0 && o.tsp_len == 0 && o.retain_rate > o.tsp_rate) {
    return absl::InvalidArgumentError(
        absl::StrCat("kv retain_rate must be <= tsp_rate (", o.tsp_rate, ") for ", o.name,
                     ": post-TSP layers would keep every propagated token, got ", o.retain_rate));
  }
  if (o.budget > 0 && o.tsp_len > 0 && o.budget > o.tsp_len) {
    return absl::InvalidArgumentError(
        absl::StrCat("kv budget must be <= tsp_len (", o.tsp_len, ") for ", o.name,
                     ": post-TSP layers would keep every propagated token, got ", o.budget));
  }
  return absl::OkStatus();
}

// The device budget (research/freekv.md §5) must hold the sink and recent pages and at least one
// retrieved page; `budget` here is the total GPU tokens, sink and recent included.
absl::Status ValidateTieredBudget(const KvPolicyOptions& o) {
  const int budget = o.budget > 0 ? o.budget : kDefaultTieredBudget;
  const int slots = budget / o.page_size;
  const int fixed = CeilDiv(o.sink, o.page_size) + std::max(1, CeilDiv(o.recent, o.page_size));
  if (slots <= fixed) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kv budget must exceed sink + recent by at least one page of ", o.page_size, " tokens for ",
        o.name, " (", fixed * o.page_size, " tokens fixed), got ", budget));
  }
  return absl::OkStatus();
}

}  // namespace

KvStats KvPolicy::Stats(const SequenceKvCache& kv) const {
  KvStats stats{.policy = std::string(name())};
  for (int l = 0; l < kv.n_layers(); ++l) stats.kept_tokens.push_back(kv.length(l));
  return stats;
}

std::span<const std::string_view> KvPolicyNames() { return kNames; }

bool IsTieredKvPolicy(std::string_view name) {
  return name == "quest" || name == "freekv" || name == "fastkv_freekv";
}

absl::Status ValidateKvPolicyOptions(const KvPolicyOptions& o, const ModelConfig& config) {
  if (std::find(kNames.begin(), kNames.end(), o.name) == kNames.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("kv policy '", o.name,
                     "' is unknown (expected one of full, snapkv, fastkv, quest, freekv, "
                     "fastkv_freekv)"));
  }
  if (o.window < 1) return Bad("window", ">= 1", o.window);
  if (o.pool_kernel < 1 || o.pool_kernel % 2 == 0) {
    return Bad("pool_kernel", "odd and >= 1", o.pool_kernel);
  }
  if (o.pool != ScorePooling::kMax && o.pool != ScorePooling::kAvg) {
    return Bad("pool", "max or avg", static_cast<int>(o.pool));
  }
  if (o.budget < 0) return Bad("budget", ">= 0 (0: retain_rate)", o.budget);
  if (!IsRate(o.retain_rate)) return Bad("retain_rate", "in (0, 1]", o.retain_rate);
  if (o.tsp_layer != -1 && (o.tsp_layer < 0 || o.tsp_layer >= config.n_layers)) {
    return Bad("tsp_layer",
               absl::StrCat("in [0, ", config.n_layers - 1, "] (or -1: n_layers / 2 - 1)"),
               o.tsp_layer);
  }
  if (!IsRate(o.tsp_rate)) return Bad("tsp_rate", "in (0, 1]", o.tsp_rate);
  if (o.tsp_len < 0) return Bad("tsp_len", ">= 0 (0: tsp_rate)", o.tsp_len);
  if (o.page_size < 1) return Bad("page_size", ">= 1", o.page_size);
  if (o.sink < 0) return Bad("sink", ">= 0", o.sink);
  if (o.recent < 0) return Bad("recent", ">= 0", o.recent);
  if (!(o.tau >= -1.0f && o.tau <= 1.0f)) return Bad("tau", "in [-1, 1]", o.tau);
  // Sizes a request gives are bounded by the context before anything is sized by them: a
  // policy's buffers scale with its budget, window and pages.
  const std::string context = absl::StrCat("<= the model's context (", config.context_length, ")");
  const std::pair<absl::string_view, int> sizes[] = {
      {"window", o.window},       {"budget", o.budget}, {"tsp_len", o.tsp_len},
      {"page_size", o.page_size}, {"sink", o.sink},     {"recent", o.recent}};
  for (const auto& [option, value] : sizes) {
    if (value > config.context_length) return Bad(option, context, value);
  }
  if (o.name == "fastkv") return ValidateFastKvModes(o);
  if (IsTieredKvPolicy(o.name)) return ValidateTieredBudget(o);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<KvPolicy>> CreateKvPolicy(const KvPolicyOptions& options,
                                                         const ModelConfig& config,
                                                         KvPolicyResources resources) {
  if (auto s = ValidateKvPolicyOptions(options, config); !s.ok()) return s;
  if (options.name == "snapkv") return std::make_unique<SnapKvPolicy>(options, config);
  if (options.name == "fastkv") return std::make_unique<FastKvPolicy>(options, config);
  if (options.name == "quest") {
    return std::make_unique<TieredKvPolicy>("quest", TieredKvPolicy::Mode::kQuest, options, config,
                                            resources);
  }
  if (options.name == "freekv") {
    return std::make_unique<TieredKvPolicy>("freekv", TieredKvPolicy::Mode::kFreeKv, options,
                                            config, resources);
  }
  if (options.name == "fastkv_freekv") {
    // FastKV's prefill; its per-layer selection, sized to the device budget less the recent
    // window, orders the host rows (TieredKvPolicy::OnPromptLayer) instead of dropping any.
    KvPolicyOptions tsp = options;
    const int budget = options.budget > 0 ? options.budget : kDefaultTieredBudget;
    const int recent_pages = std::max(1, CeilDiv(options.recent, options.page_size));
    tsp.budget = std::max(options.window + 1, budget - recent_pages * options.page_size);
    return std::make_unique<TieredKvPolicy>("fastkv_freekv", TieredKvPolicy::Mode::kFreeKv, options,
                                            config, resources,
                                            std::make_unique<FastKvPolicy>(tsp, config));
  }
  return std::unique_ptr<KvPolicy>(new FullPolicy());
}

}  // namespace kvserve
