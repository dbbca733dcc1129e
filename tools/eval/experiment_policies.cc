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

// A tiered policy with its first `dense` layers attending over the whole KV at decode: the inner
// policy never sees those layers' decode hooks, so it neither selects nor recalls for them.
class DenseFirstLayersPolicy : public KvPolicy {
 public:
  DenseFirstLayersPolicy(std::unique_ptr<KvPolicy> inner, int dense)
      : inner_(std::move(inner)), dense_(dense) {}

  std::string_view name() const override { return inner_->name(); }
  bool needs_whole_prompt() const override { return inner_->needs_whole_prompt(); }
  PromptCompressionPlan PlanPrompt(int n) override { return inner_->PlanPrompt(n); }
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
  auto policy = CreateKvPolicy(options, config);
  if (!policy.ok() || experiment.empty()) return policy;
  auto* tiered = dynamic_cast<TieredKvPolicy*>(policy->get());
  GroupAggregation aggregation = GroupAggregation::kMeanSoftmax;
  DigestKind digest = DigestKind::kMinMax;
  int dense = 0;
  for (const absl::string_view part : absl::StrSplit(experiment, '+')) {
    if (tiered == nullptr) break;
    if (part == "mean") {
      aggregation = GroupAggregation::kMean;
    } else if (part == "max") {
      aggregation = GroupAggregation::kMax;
    } else if (part == "mad") {
      digest = DigestKind::kCenterMad;
    } else if (!absl::StartsWith(part, "dense") || !absl::SimpleAtoi(part.substr(5), &dense) ||
               dense <= 0) {
      tiered = nullptr;
    }
  }
  if (tiered == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("experiment '", experiment, "' does not apply to ", options.name));
  }
  tiered->SetPageScoring(aggregation, digest);
  if (dense == 0) return policy;
  return std::make_unique<DenseFirstLayersPolicy>(*std::move(policy), dense);
}

}  // namespace kvserve::eval
