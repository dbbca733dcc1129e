#include "tools/eval/experiment_policies.h"

#include <algorithm>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

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
  void DecodePages(int layer, DecodePageLists* lists) const override {
    inner_->DecodePages(layer, lists);
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
  int dense = 0;
  if (experiment.starts_with("dense") && IsTiered(KindOf(options)) &&
      absl::SimpleAtoi(experiment.substr(5), &dense) && dense > 0) {
    auto inner = CreateKvPolicy(options, config);
    if (!inner.ok()) return inner.status();
    return std::make_unique<DenseFirstLayersPolicy>(*std::move(inner), dense);
  }
  return absl::InvalidArgumentError(absl::StrCat("experiment '", experiment, "' does not apply to ",
                                                 std::string(KvPolicyName(options))));
}

}  // namespace kvserve::eval
