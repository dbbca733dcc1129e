#include "tools/eval/recording_plan.h"

namespace kvserve::eval {

PromptCompressionPlan RecordingPlan(const PromptCompressionPlan& inner, int prompt_tokens,
                                    int n_layers, int window) {
  PromptCompressionPlan plan = inner;
  if (plan.empty()) {
    plan.prompt_tokens = prompt_tokens;
    plan.tsp_keep = prompt_tokens;
    plan.layers.assign(n_layers, {});
  }
  for (int l = 0; l < n_layers; ++l) {
    LayerCompression& lc = plan.layers[l];
    lc.keep = 0;  // drop nothing; replays decide what each configuration keeps
    if (lc.window == 0 && plan.RowsAt(l) > window) lc.window = window;
  }
  plan.record_scores = true;
  return plan;
}

}  // namespace kvserve::eval
