#include "tools/eval/recording_policy.h"

namespace kvserve::eval {

RecordingPolicy::RecordingPolicy(std::unique_ptr<KvPolicy> inner, int window)
    : inner_(std::move(inner)), window_(window) {}

int RecordingPolicy::ScoreWindow(int layer, int n) const {
  const int wanted = inner_ ? inner_->ScoreWindow(layer, n) : 0;
  return wanted > 0 ? wanted : (n > window_ ? window_ : 0);
}

KvPolicy::LayerDecision RecordingPolicy::OnPromptLayer(int layer, int n,
                                                       std::span<const float> window_scores) {
  if (layer == 0) layers_.clear();
  if (static_cast<int>(layers_.size()) <= layer) layers_.resize(layer + 1);
  PromptLayerRecord& r = layers_[layer];
  r.n = n;
  r.window = window_scores.empty() ? 0 : ScoreWindow(layer, n);
  r.scores.assign(window_scores.begin(), window_scores.end());
  if (inner_ == nullptr) return {};
  // The inner policy sees exactly what the backend would have given it alone.
  const bool inner_wants = inner_->ScoreWindow(layer, n) > 0;
  LayerDecision d =
      inner_->OnPromptLayer(layer, n, inner_wants ? window_scores : std::span<const float>());
  r.propagate = d.propagate;
  return {.retain = {}, .propagate = std::move(d.propagate)};
}

KvStats RecordingPolicy::Stats(const SequenceKvCache& kv) const {
  return inner_ ? inner_->Stats(kv) : KvPolicy::Stats(kv);
}

}  // namespace kvserve::eval
