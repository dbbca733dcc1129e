#include "tools/eval/experiment_policies.h"

#include <algorithm>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/kv/tiered_kv_policy.h"

namespace kvserve::eval {
namespace {

// A tiered policy for the eval: its first `dense` layers attend over the whole KV at decode (the
// inner policy never sees those layers' decode hooks, so it neither selects nor recalls for them),
// and the pages each KV head attends over are recorded.
class EvalTieredPolicy : public KvPolicy {
 public:
  EvalTieredPolicy(std::unique_ptr<KvPolicy> inner, TieredKvPolicy* tiered, int dense, int n_layers,
                   int n_kv_heads)
      : inner_(std::move(inner)),
        tiered_(tiered),
        dense_(dense),
        n_layers_(n_layers),
        n_kv_heads_(n_kv_heads) {}

  std::string_view name() const override { return inner_->name(); }
  bool needs_whole_prompt() const override { return inner_->needs_whole_prompt(); }
  PromptCompressionPlan PlanPrompt(int n) override { return inner_->PlanPrompt(n); }
  void BeginDecodeLayer(int layer) override {
    if (layer == 0) log_.emplace_back(n_layers_);
    if (layer >= dense_) inner_->BeginDecodeLayer(layer);
  }
  bool PrepareDecodeAttention(int layer, const float* q, const SequenceKvCache& kv) override {
    if (layer < dense_ || !inner_->PrepareDecodeAttention(layer, q, kv)) return false;
    if (!log_.empty()) {
      for (int h = 0; h < n_kv_heads_; ++h) {
        std::vector<int32_t> pages = tiered_->ResidentPages(layer, h);
        std::sort(pages.begin(), pages.end());
        log_.back()[layer].push_back(std::move(pages));
      }
    }
    return true;
  }
  void DecodePages(int layer, DecodePageLists* lists) const override {
    inner_->DecodePages(layer, lists);
  }
  void FinishDecodeAttention(int layer, const float* q, const SequenceKvCache& kv) override {
    if (layer >= dense_) inner_->FinishDecodeAttention(layer, q, kv);
  }
  void WaitIdle() const override { inner_->WaitIdle(); }
  BudgetCache* device_budget() override { return inner_->device_budget(); }
  KvStats Stats(const SequenceKvCache& kv) const override { return inner_->Stats(kv); }

  const ResidencyLog& log() const { return log_; }

 private:
  std::unique_ptr<KvPolicy> inner_;
  TieredKvPolicy* tiered_;
  int dense_;
  int n_layers_;
  int n_kv_heads_;
  ResidencyLog log_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<KvPolicy>> CreateEvalPolicy(const KvPolicyOptions& options,
                                                           const std::string& experiment,
                                                           const ModelConfig& config) {
  auto policy = CreateKvPolicy(options, config);
  if (!policy.ok()) return policy;
  auto* tiered = dynamic_cast<TieredKvPolicy*>(policy->get());
  if (experiment.empty() && tiered == nullptr) return policy;
  // Without an experiment on it, each choice stays the policy's own.
  GroupAggregation aggregation = tiered ? tiered->aggregation() : GroupAggregation::kMeanSoftmax;
  DigestKind digest = tiered ? tiered->digest() : DigestKind::kMinMax;
  int dense = 0;
  for (const absl::string_view part : absl::StrSplit(experiment, '+', absl::SkipEmpty())) {
    if (tiered == nullptr) break;
    if (part == "mean") {
      aggregation = GroupAggregation::kMean;
    } else if (part == "max") {
      aggregation = GroupAggregation::kMax;
    } else if (part == "mad") {
      digest = DigestKind::kCenterMad;
    } else if (part == "minmax") {
      digest = DigestKind::kMinMax;
    } else if (!absl::StartsWith(part, "dense") || !absl::SimpleAtoi(part.substr(5), &dense) ||
               dense <= 0) {
      tiered = nullptr;
    }
  }
  if (tiered == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "experiment '", experiment, "' does not apply to ", std::string(KvPolicyName(options))));
  }
  tiered->SetPageScoring(aggregation, digest);
  return std::make_unique<EvalTieredPolicy>(*std::move(policy), tiered, dense, config.n_layers,
                                            config.n_kv_heads);
}

const ResidencyLog* RecordedResidency(const KvPolicy& policy) {
  const auto* eval = dynamic_cast<const EvalTieredPolicy*>(&policy);
  return eval ? &eval->log() : nullptr;
}

}  // namespace kvserve::eval
