#include "engine/kv/kv_policy.h"

#include <algorithm>
#include <variant>

#include "engine/base/status_macros.h"
#include "engine/kv/fastkv_policy.h"
#include "engine/kv/snapkv_policy.h"
#include "engine/kv/tiered_kv_policy.h"
#include "kernels/ceil_div.h"

namespace kvserve {
namespace {

// Keeps every token of every layer: dense attention, the baseline.
class FullPolicy : public KvPolicy {
 public:
  std::string_view name() const override { return "full"; }
};

}  // namespace

KvStats KvPolicy::Stats(const SequenceKvCache& kv) const {
  KvStats stats{.policy = std::string(name())};
  for (int l = 0; l < kv.n_layers(); ++l) stats.kept_tokens.push_back(kv.length(l));
  return stats;
}

absl::StatusOr<std::unique_ptr<KvPolicy>> CreateKvPolicy(const KvPolicyOptions& options,
                                                         const ModelConfig& config,
                                                         KvPolicyResources resources) {
  KVSERVE_RETURN_IF_ERROR(ValidateKvPolicyOptions(options, config));
  struct Make {
    const ModelConfig& config;
    KvPolicyResources resources;
    std::unique_ptr<KvPolicy> operator()(const FullOptions&) const {
      return std::make_unique<FullPolicy>();
    }
    std::unique_ptr<KvPolicy> operator()(const SnapKvOptions& o) const {
      return std::make_unique<SnapKvPolicy>(o, config);
    }
    std::unique_ptr<KvPolicy> operator()(const FastKvOptions& o) const {
      return std::make_unique<FastKvPolicy>(o, config);
    }
    std::unique_ptr<KvPolicy> operator()(const QuestOptions& o) const {
      return std::make_unique<TieredKvPolicy>("quest", TieredKvPolicy::Mode::kQuest, o, 1.0f,
                                              config, resources);
    }
    std::unique_ptr<KvPolicy> operator()(const FreeKvOptions& o) const {
      return std::make_unique<TieredKvPolicy>("freekv", TieredKvPolicy::Mode::kFreeKv, o, o.tau,
                                              config, resources);
    }
    std::unique_ptr<KvPolicy> operator()(const FastKvFreeKvOptions& o) const {
      // FastKV's prefill; its per-layer selection, sized to the device budget less the recent
      // window, orders the host rows (TieredKvPolicy::OnPromptLayer) instead of dropping any.
      FastKvOptions tsp;
      static_cast<PromptScoringOptions&>(tsp) = o;
      static_cast<TspOptions&>(tsp) = o;
      const int budget = o.budget > 0 ? o.budget : kDefaultTieredBudget;
      const int recent_pages = std::max(1, CeilDiv(o.recent, o.page_size));
      tsp.budget = std::max(o.window + 1, budget - recent_pages * o.page_size);
      return std::make_unique<TieredKvPolicy>("fastkv_freekv", TieredKvPolicy::Mode::kFreeKv, o,
                                              o.tau, config, resources,
                                              std::make_unique<FastKvPolicy>(tsp, config));
    }
  };
  return std::visit(Make{config, resources}, options);
}

}  // namespace kvserve
