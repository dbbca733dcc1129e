#include "tools/eval/experiment_policies.h"

#include <algorithm>
#include <vector>

#include "absl/strings/numbers.h"
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

// A tiered policy with its first `dense` layers attending over the whole KV at decode: the inner
// policy never sees those layers' decode hooks, so it neither selects nor recalls for them.
class DenseFirstLayersPolicy : public KvPolicy {
 public:
  DenseFirstLayersPolicy(std::unique_ptr<KvPolicy> inner, int dense)
      : inner_(std::move(inner)), dense_(dense) {}

  std::string_view name() const override { return inner_->name(); }
  bool needs_whole_prompt() const override { return inner_->needs_whole_prompt(); }
  int ScoreWindow(int layer, int n) const override { return inner_->ScoreWindow(layer, n); }
  LayerDecision OnPromptLayer(int layer, int n, std::span<const float> scores) override {
    return inner_->OnPromptLayer(layer, n, scores);
  }
  void BeginDecodeLayer(int layer) override {
    if (layer >= dense_) inner_->BeginDecodeLayer(layer);
  }
  bool PrepareDecodeAttention(int layer, const float* q, const SequenceKvCache& kv) override {
    return layer >= dense_ && inner_->PrepareDecodeAttention(layer, q, kv);
  }
  void DecodeSegments(int layer, int kv_head, std::vector<KvSegment>* out) const override {
    inner_->DecodeSegments(layer, kv_head, out);
  }
  void FinishDecodeAttention(int layer, const float* q, const SequenceKvCache& kv) override {
    if (layer >= dense_) inner_->FinishDecodeAttention(layer, q, kv);
  }
  void WaitIdle() const override { inner_->WaitIdle(); }
  KvStats Stats(const SequenceKvCache& kv) const override { return inner_->Stats(kv); }

 private:
  std::unique_ptr<KvPolicy> inner_;
  int dense_;
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
  int dense = 0;
  if (experiment.starts_with("dense") && IsTieredKvPolicy(options.name) &&
      absl::SimpleAtoi(experiment.substr(5), &dense) && dense > 0) {
    auto inner = CreateKvPolicy(options, config);
    if (!inner.ok()) return inner.status();
    return std::make_unique<DenseFirstLayersPolicy>(*std::move(inner), dense);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("experiment '", experiment, "' does not apply to ", options.name));
}

}  // namespace kvserve::eval
