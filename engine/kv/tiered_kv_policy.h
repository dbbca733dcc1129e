#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "engine/kv/budget_cache.h"
#include "engine/kv/decode_page_lists.h"
#include "engine/kv/kv_policy.h"
#include "engine/kv/page_digests.h"
#include "engine/kv/page_selection.h"
#include "engine/kv/recall_executor.h"
#include "engine/kv/residency_map.h"

namespace kvserve {

// Quest and FreeKV decode (research/freekv.md): the sequence's full KV stays in the host cache
// (the SequenceKvCache the backend appends to, head-major pages); each layer attends over a
// device budget of `budget / page_size` pages: sink pages, pages selected by Quest bounds of the
// query against per-page key digests (per KV head, MeanS over the group), and a recent window
// that rotates as pages fill. A context that fits the budget runs dense over the host cache.
// Digests: center ± mean-absolute-deviation boxes for FreeKV (its system code), min/max for Quest.
//
//  - kQuest: select with the current query and recall synchronously before attention.
//  - kFreeKv: attend over the pages selected with the previous step's query; after attention,
//    select with this query and recall for the next step on the RecallExecutor. Before attention,
//    a KV head whose group-mean cosine between this and the previous query is below tau is
//    corrected: selected with this query and recalled synchronously; that selection then serves
//    the other heads' recall for the next step (one scoring pass per layer and step).
//
// With `prefill` (fastkv_freekv) the prompt runs through that policy's TSP, but nothing the
// prefill produced is dropped: it all goes to the host tier, each KV head's rows ordered with the
// ones the prefill policy would keep first, so that they fill few pages.
class TieredKvPolicy : public KvPolicy {
 public:
  enum class Mode { kQuest, kFreeKv };
  using Resources = KvPolicyResources;

  TieredKvPolicy(std::string name, Mode mode, const TieredOptions& options, float tau,
                 const ModelConfig& config, Resources resources,
                 std::unique_ptr<KvPolicy> prefill = nullptr);
  ~TieredKvPolicy() override;

  std::string_view name() const override { return name_; }
  bool needs_whole_prompt() const override;
  // fastkv_freekv: the prefill policy's plan, its unselected rows kept after the selected ones.
  PromptCompressionPlan PlanPrompt(int n) override;
  KvStats Stats(const SequenceKvCache& kv) const override;

  // Decode hooks (KvPolicy): Begin waits for this layer's outstanding recall; Prepare updates
  // digests and the window and selects (quest, a first sparse step) or corrects (freekv); false
  // runs dense over the host cache (the layer's context within the budget, or the cache's owner
  // gave no device budget: see ProvideDeviceBudget); Finish submits freekv's speculative recall
  // for the next step.
  void BeginDecodeLayer(int layer) override;
  bool PrepareDecodeAttention(int layer, const float* q, const SequenceKvCache& kv) override;
  // The layer's resident pages per KV head, in slot order: the sink, the selected and the window.
  void DecodePages(int layer, DecodePageLists* lists) const override;
  void FinishDecodeAttention(int layer, const float* q, const SequenceKvCache& kv) override;
  void WaitIdle() const override;
  BudgetCache* device_budget() override { return &budget_; }

  const BudgetLayout& layout() const { return layout_; }
  Mode mode() const { return mode_; }
  float tau() const { return tau_; }
  int page_size() const { return options_.page_size; }
  // The device budget a backend with its own arena fills (CUDA): its page ids, per layer.
  BudgetCache& budget() { return budget_; }
  void RecordDeviceCounts(const DeviceKvCounts& c) override {
    decode_steps_ += c.decode_steps;
    recalled_pages_.fetch_add(c.recalled_pages, std::memory_order_relaxed);
    recalled_bytes_.fetch_add(c.recalled_bytes, std::memory_order_relaxed);
    checks_.fetch_add(c.checks, std::memory_order_relaxed);
    corrections_.fetch_add(c.corrections, std::memory_order_relaxed);
    layer_steps_.fetch_add(c.layer_steps, std::memory_order_relaxed);
    steps_corrected_.fetch_add(c.steps_corrected, std::memory_order_relaxed);
    device_driven_ = true;
  }
  // Which pages KV head `kv_head` of `layer` holds in its device budget (after WaitIdle).
  const ResidencyMap& residency(int layer, int kv_head) const {
    return layers_[layer].heads[kv_head];
  }
  // How pages are scored: MeanS over the group, over center ± MAD digests (freekv,
  // fastkv_freekv) or min/max ones (quest). Another choice (the accuracy eval compares them) is set
  // before the first decode step.
  GroupAggregation aggregation() const { return aggregation_; }
  DigestKind digest() const { return digest_; }
  void SetPageScoring(GroupAggregation aggregation, DigestKind digest);
  // The pages resident for (layer, kv_head) now; empty while the layer runs dense.
  std::vector<int32_t> ResidentPages(int layer, int kv_head) const;

 private:
  struct Layer {
    Layer(const ModelConfig& c, DigestKind digest);
    PageDigests digests;
    std::vector<ResidencyMap> heads;
    bool sparse = false;
    int tokens = 0;             // host rows when prepared
    std::vector<float> last_q;  // previous step's query [n_heads][head_dim]
    bool has_last_q = false;
    uint64_t pending = 0;                        // ticket of the outstanding recall; 0 = none
    std::vector<std::vector<int32_t>> deferred;  // per head: selection to recall after attention
  };

  // Per-head top-k pages for `q` over the candidates of `kv_head`.
  std::vector<int32_t> SelectPages(const Layer& l, int kv_head, const float* q) const;
  // Moves `kv_head` of `layer` to `pages` and copies in what was not resident.
  void Apply(int layer, int kv_head, const std::vector<int32_t>& pages, const SequenceKvCache& kv);
  void Place(int layer, int kv_head, const ResidencyMap::Placement& p, const SequenceKvCache& kv);
  int RowsIn(const Layer& l, int32_t page) const;

  std::string name_;
  Mode mode_;
  TieredOptions options_;
  float tau_;  // freekv's correction threshold
  ModelConfig config_;
  BudgetLayout layout_;
  GroupAggregation aggregation_ = GroupAggregation::kMeanSoftmax;
  DigestKind digest_;
  std::unique_ptr<PagePool> own_pool_;
  InlineRecallExecutor inline_recall_;
  RecallExecutor* recall_;
  BudgetCache budget_;
  std::unique_ptr<KvPolicy> prefill_;
  std::vector<Layer> layers_;
  // Counters, updated by the engine thread and the recall worker.
  std::atomic<int64_t> recalled_pages_ = 0;
  std::atomic<int64_t> recalled_bytes_ = 0;
  std::atomic<int64_t> checks_ = 0;           // (step, layer, KV head) correction checks
  std::atomic<int64_t> corrections_ = 0;      // of which corrected
  std::atomic<int64_t> steps_corrected_ = 0;  // (step, layer) with any head corrected
  std::atomic<int64_t> layer_steps_ = 0;
  int64_t decode_steps_ = 0;  // engine thread only
  // A backend with its own arena ran the decode (RecordDeviceCounts): layers_ are not driven.
  bool device_driven_ = false;
};

}  // namespace kvserve
