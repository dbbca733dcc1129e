#include "engine/kv/tiered_kv_policy.h"

#include <algorithm>
#include <cmath>

#include "kernels/ceil_div.h"
#include "kernels/cpu_reference/query_drift.h"

namespace kvserve {
namespace {

BudgetLayout LayoutOf(const TieredOptions& o) {
  const int budget = o.budget > 0 ? o.budget : kDefaultTieredBudget;
  return {.slots = budget / o.page_size,
          .sink = CeilDiv(o.sink, o.page_size),
          .window = std::max(1, CeilDiv(o.recent, o.page_size))};
}

// FreeKV's system code summarises a page by center ± mean |k - center| (research/freekv.md §4.2;
// measured better here, docs/accuracy.md); Quest by per-channel min/max, as its paper does.
DigestKind DefaultDigest(TieredKvPolicy::Mode mode) {
  return mode == TieredKvPolicy::Mode::kFreeKv ? DigestKind::kCenterMad : DigestKind::kMinMax;
}

}  // namespace

TieredKvPolicy::Layer::Layer(const ModelConfig& c, DigestKind digest)
    : digests(c.n_kv_heads, c.head_dim, digest), deferred(c.n_kv_heads) {}

TieredKvPolicy::TieredKvPolicy(std::string name, Mode mode, const TieredOptions& options, float tau,
                               const ModelConfig& config, Resources resources,
                               std::unique_ptr<KvPolicy> prefill)
    : name_(std::move(name)),
      mode_(mode),
      options_(options),
      tau_(tau),
      config_(config),
      layout_(LayoutOf(options)),
      digest_(DefaultDigest(mode)),
      own_pool_(resources.device_pool
                    ? nullptr
                    : std::make_unique<PagePool>(
                          KvPageShape{config.n_kv_heads, options.page_size, config.head_dim},
                          PagePool::kUnbounded)),
      recall_(resources.recall ? resources.recall : &inline_recall_),
      budget_(resources.device_pool ? *resources.device_pool : *own_pool_, config.n_layers,
              layout_),
      prefill_(std::move(prefill)) {
  layers_.reserve(config.n_layers);
  for (int l = 0; l < config.n_layers; ++l) {
    layers_.emplace_back(config, digest_);
    layers_.back().heads.assign(config.n_kv_heads, ResidencyMap(layout_));
  }
}

TieredKvPolicy::~TieredKvPolicy() { WaitIdle(); }

void TieredKvPolicy::SetPageScoring(GroupAggregation aggregation, DigestKind digest) {
  aggregation_ = aggregation;
  digest_ = digest;
  for (Layer& l : layers_) l.digests = PageDigests(config_.n_kv_heads, config_.head_dim, digest);
}

std::vector<int32_t> TieredKvPolicy::ResidentPages(int layer, int kv_head) const {
  const Layer& l = layers_[layer];
  return l.sparse ? l.heads[kv_head].ResidentPages() : std::vector<int32_t>{};
}

void TieredKvPolicy::WaitIdle() const {
  for (const Layer& l : layers_) {
    if (l.pending) recall_->Wait(l.pending);
  }
}

bool TieredKvPolicy::needs_whole_prompt() const {
  return prefill_ && prefill_->needs_whole_prompt();
}

PromptCompressionPlan TieredKvPolicy::PlanPrompt(int n) {
  if (!prefill_) return {};
  PromptCompressionPlan plan = prefill_->PlanPrompt(n);
  // The host tier keeps every row the prefill produced, but each KV head's rows the prefill
  // policy would keep go first: attention ignores row order (positions live in the rotated
  // keys), and packed together they fill few pages, which page selection then finds.
  plan.keep_unselected = true;
  return plan;
}

int TieredKvPolicy::RowsIn(const Layer& l, int32_t page) const {
  return std::min(options_.page_size, l.tokens - page * options_.page_size);
}

void TieredKvPolicy::BeginDecodeLayer(int layer) {
  Layer& l = layers_[layer];
  if (l.pending) recall_->Wait(l.pending);
  l.pending = 0;
}

void TieredKvPolicy::Place(int layer, int kv_head, const ResidencyMap::Placement& p,
                           const SequenceKvCache& kv) {
  budget_.Recall(kv, layer, p.page, kv_head, p.slot, 0, RowsIn(layers_[layer], p.page));
}

std::vector<int32_t> TieredKvPolicy::SelectPages(const Layer& l, int kv_head,
                                                 const float* q) const {
  const std::vector<int32_t> candidates = l.heads[kv_head].Candidates();
  std::vector<float> scores(candidates.size());
  const int group = config_.group_size();
  ScoreCandidatePages(q + static_cast<size_t>(kv_head) * group * config_.head_dim, group, l.digests,
                      kv_head, candidates, aggregation_, scores);
  return TopPages(scores, candidates, layout_.retrieved());
}

void TieredKvPolicy::Apply(int layer, int kv_head, const std::vector<int32_t>& pages,
                           const SequenceKvCache& kv) {
  const auto recalls = layers_[layer].heads[kv_head].Select(pages);
  for (const ResidencyMap::Placement& p : recalls) Place(layer, kv_head, p, kv);
  recalled_pages_.fetch_add(static_cast<int64_t>(recalls.size()), std::memory_order_relaxed);
  recalled_bytes_.fetch_add(static_cast<int64_t>(recalls.size() * budget_.bytes_per_chunk()),
                            std::memory_order_relaxed);
}

bool TieredKvPolicy::PrepareDecodeAttention(int layer, const float* q, const SequenceKvCache& kv) {
  Layer& l = layers_[layer];
  const int p = options_.page_size;
  if (layer == 0) ++decode_steps_;
  l.tokens = kv.length(layer);
  const int n_pages = CeilDiv(l.tokens, p);
  if (!l.sparse) {
    // Without a budget (none needed yet, or no device room) the layer runs dense, and correct.
    if (n_pages <= layout_.slots || !budget_.allocated() || kv.page_size() != p) return false;
    l.sparse = true;
  }
  while (l.digests.pages() < l.tokens / p) l.digests.AppendPage(kv, layer);
  const int32_t newest = n_pages - 1;
  for (int h = 0; h < config_.n_kv_heads; ++h) {
    ResidencyMap& map = l.heads[h];
    bool newest_placed = false;
    for (const ResidencyMap::Placement& placed : map.Extend(n_pages)) {
      Place(layer, h, placed, kv);
      newest_placed |= placed.page == newest;
    }
    // The token just appended lands in the newest page's slot.
    if (!newest_placed) {
      const int row = l.tokens - 1 - newest * p;
      budget_.Recall(kv, layer, newest, h, map.slot_of(newest), row, 1);
    }
  }

  if (mode_ == Mode::kQuest || !l.has_last_q) {
    // Quest, and FreeKV's first sparse step (nothing speculated yet): select now, synchronously.
    for (int h = 0; h < config_.n_kv_heads; ++h) Apply(layer, h, SelectPages(l, h, q), kv);
    return true;
  }
  // FreeKV correction: heads whose query drifted from the one their pages were chosen with.
  const int group = config_.group_size();
  const int d = config_.head_dim;
  std::vector<bool> drifted(config_.n_kv_heads, false);
  bool any = false;
  for (int h = 0; h < config_.n_kv_heads; ++h) {
    float cos = 0.0f;
    for (int g = h * group; g < (h + 1) * group; ++g) {
      cos += kernels::reference::QueryCosine(q + static_cast<size_t>(g) * d,
                                             l.last_q.data() + static_cast<size_t>(g) * d, d);
    }
    drifted[h] = kernels::reference::QueryDrifted(cos, group, tau_);
    any |= drifted[h];
  }
  checks_.fetch_add(config_.n_kv_heads, std::memory_order_relaxed);
  layer_steps_.fetch_add(1, std::memory_order_relaxed);
  if (!any) return true;
  steps_corrected_.fetch_add(1, std::memory_order_relaxed);
  // One scoring pass for every head: the drifted ones recall now, the rest after attention.
  for (int h = 0; h < config_.n_kv_heads; ++h) {
    std::vector<int32_t> pages = SelectPages(l, h, q);
    if (drifted[h]) {
      Apply(layer, h, pages, kv);
      corrections_.fetch_add(1, std::memory_order_relaxed);
    } else {
      l.deferred[h] = std::move(pages);
    }
  }
  return true;
}

void TieredKvPolicy::DecodePages(int layer, DecodePageLists* lists) const {
  lists->BeginSparseLayer();
  for (const ResidencyMap& map : layers_[layer].heads) lists->AddHead(map.ResidentPages());
}

void TieredKvPolicy::FinishDecodeAttention(int layer, const float* q, const SequenceKvCache& kv) {
  Layer& l = layers_[layer];
  if (mode_ != Mode::kFreeKv || !l.sparse) return;
  const size_t q_floats = static_cast<size_t>(config_.n_heads) * config_.head_dim;
  l.last_q.assign(q, q + q_floats);
  l.has_last_q = true;
  const bool corrected = std::any_of(l.deferred.begin(), l.deferred.end(),
                                     [](const auto& pages) { return !pages.empty(); });
  // Speculative recall for the next step, off the critical path; the layer's state is the job's
  // until BeginDecodeLayer(layer) waits for it.
  l.pending = recall_->Submit([this, layer, corrected, &kv] {
    Layer& state = layers_[layer];
    for (int h = 0; h < config_.n_kv_heads; ++h) {
      if (corrected) {
        if (!state.deferred[h].empty()) Apply(layer, h, state.deferred[h], kv);
        state.deferred[h].clear();
      } else {
        Apply(layer, h, SelectPages(state, h, state.last_q.data()), kv);
      }
    }
  });
}

KvStats TieredKvPolicy::Stats(const SequenceKvCache& kv) const {
  WaitIdle();
  KvStats stats = prefill_ ? prefill_->Stats(kv) : KvPolicy::Stats(kv);
  stats.policy = name_;
  stats.kept_tokens.clear();
  int64_t host = 0, resident = 0;
  const int64_t budget_tokens = static_cast<int64_t>(layout_.slots) * options_.page_size;
  for (int l = 0; l < kv.n_layers(); ++l) {
    stats.kept_tokens.push_back(kv.length(l));
    host += kv.length(l);
    // On a device arena a layer is sparse exactly while it outgrows the budget.
    const bool sparse = device_driven_ ? kv.length(l) > budget_tokens : layers_[l].sparse;
    resident += sparse ? std::min<int64_t>(kv.length(l), budget_tokens) : kv.length(l);
  }
  stats.host_tokens = host;
  stats.recalled_pages = recalled_pages_.load();
  stats.recalled_bytes = recalled_bytes_.load();
  stats.corrections = corrections_.load();
  const int64_t checks = checks_.load();
  stats.correction_rate = checks ? static_cast<double>(stats.corrections) / checks : 0.0;
  const int64_t layer_steps = layer_steps_.load();
  stats.step_correction_rate =
      layer_steps ? static_cast<double>(steps_corrected_.load()) / layer_steps : 0.0;
  stats.decode_steps = decode_steps_;
  stats.resident_fraction = host ? static_cast<double>(resident) / host : 1.0;
  return stats;
}

}  // namespace kvserve
