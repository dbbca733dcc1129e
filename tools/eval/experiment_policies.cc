#include "tools/eval/experiment_policies.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/kv/snapkv_selection.h"
#include "engine/kv/token_selection.h"

namespace kvserve::eval {
namespace {

// SnapKV with the GQA group's scores combined by max (research/fastkv.md §2.2 step 7 sums).
class GroupMaxSnapKvPolicy : public KvPolicy {
 public:
  GroupMaxSnapKvPolicy(const KvPolicyOptions& options, const ModelConfig& config)
      : options_(options), n_heads_(config.n_heads), n_kv_heads_(config.n_kv_heads) {}

  std::string_view name() const override { return "snapkv"; }
  bool needs_whole_prompt() const override { return true; }
  int ScoreWindow(int, int n) const override {
    return n > SnapKvBudget(options_, n) ? options_.window : 0;
  }
  LayerDecision OnPromptLayer(int, int n, std::span<const float> window_scores) override {
    const int budget = SnapKvBudget(options_, n);
    const size_t len = static_cast<size_t>(std::max(0, n - options_.window));
    if (n <= budget || window_scores.size() != static_cast<size_t>(n_heads_) * len) return {};
    std::vector<float> pooled(static_cast<size_t>(n_heads_) * len);
    for (int h = 0; h < n_heads_; ++h) {
      PoolScores(window_scores.subspan(h * len, len), options_.pool, options_.pool_kernel,
                 std::span(pooled).subspan(h * len, len));
    }
    const int group = n_heads_ / n_kv_heads_;
    std::vector<float> kv_scores(n_kv_heads_ * len, 0.0f);
    for (int g = 0; g < n_kv_heads_; ++g) {
      for (int h = g * group; h < (g + 1) * group; ++h) {
        for (size_t j = 0; j < len; ++j) {
          kv_scores[g * len + j] = std::max(kv_scores[g * len + j], pooled[h * len + j]);
        }
      }
    }
    return {.retain = SelectPerKvHead(kv_scores.data(), n_kv_heads_, n, options_.window, budget)};
  }

 private:
  KvPolicyOptions options_;
  int n_heads_;
  int n_kv_heads_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<KvPolicy>> CreateEvalPolicy(const KvPolicyOptions& options,
                                                           const std::string& experiment,
                                                           const ModelConfig& config) {
  if (experiment.empty()) return CreateKvPolicy(options, config);
  if (experiment == "gmax" && options.name == "snapkv") {
    if (auto s = ValidateKvPolicyOptions(options, config); !s.ok()) return s;
    return std::make_unique<GroupMaxSnapKvPolicy>(options, config);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("experiment '", experiment, "' does not apply to ", options.name));
}

}  // namespace kvserve::eval
