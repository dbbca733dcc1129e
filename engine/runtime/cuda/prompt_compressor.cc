#include "engine/runtime/cuda/prompt_compressor.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/runtime/cuda/cuda_status.h"
#include "engine/runtime/cuda/device_memory_pool.h"
#include "engine/runtime/cuda/step_plan.h"
#include "kernels/kv_compaction.h"
#include "kernels/row_gather.h"
#include "kernels/score_pooling.h"
#include "kernels/token_top_k.h"
#include "kernels/window_scores.h"

namespace kvserve::cuda {
namespace {

template <typename T>
T* Carve(char* base, size_t* offset, size_t count) {
  T* at = base == nullptr ? nullptr : reinterpret_cast<T*>(base + *offset);
  *offset += AlignDeviceBytes(count * sizeof(T));
  return at;
}

// Offsets inside one layer's metadata (S sequences).
size_t Windows(int) { return 0; }
size_t KvLens(int s) { return s; }
size_t CuPrefix(int s) { return 2 * size_t(s); }
size_t CuKept(int s) { return 3 * size_t(s) + 1; }
size_t CuKeep(int s) { return 4 * size_t(s) + 2; }
size_t LayerIntCount(int s) { return 5 * size_t(s) + 3; }

}  // namespace

absl::Status PromptCompressor::Check(const PromptCompressionPlan& plan, int n, int n_layers) {
  if (plan.empty()) return absl::OkStatus();
  if (static_cast<int>(plan.layers.size()) != n_layers) {
    return absl::InvalidArgumentError("the prompt compression plan does not list every layer");
  }
  if (plan.prompt_tokens != n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a prompt compression plan for ", plan.prompt_tokens, " tokens on a prompt of ", n));
  }
  const int tsp = plan.tsp_layer();
  if (tsp >= 0 && plan.tsp_keep < n) {
    const int window = plan.layers[tsp].window;
    if (window <= 0 || plan.tsp_keep < window) {
      return absl::InvalidArgumentError(absl::StrCat("token-selective propagation at layer ", tsp,
                                                     " keeps ", plan.tsp_keep, " rows with window ",
                                                     window));
    }
  }
  for (int l = 0; l < n_layers; ++l) {
    const LayerCompression& lc = plan.layers[l];
    if (lc.propagate && l != tsp) {
      return absl::InvalidArgumentError("a prompt compression plan propagates at two layers");
    }
    if (lc.window < 0 || lc.keep < 0 || (lc.window > 0 && lc.window >= plan.RowsAt(l))) {
      return absl::InvalidArgumentError(absl::StrCat("prompt compression at layer ", l, ": window ",
                                                     lc.window, ", keep ", lc.keep, " over ",
                                                     plan.RowsAt(l), " rows"));
    }
  }
  if (plan.pool_kernel < 1 || plan.pool_kernel % 2 == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("score pooling kernel ", plan.pool_kernel, " (odd, at least 1)"));
  }
  return absl::OkStatus();
}

bool PromptCompressor::Plan(std::span<const SequenceChunk> batch, const ModelConfig& config) {
  n_heads_ = config.n_heads;
  n_kv_heads_ = config.n_kv_heads;
  head_dim_ = config.head_dim;
  scale_ = 1.0f / std::sqrt(static_cast<float>(config.head_dim));
  num_seqs_ = static_cast<int>(batch.size());
  const int S = num_seqs_;
  plans_.assign(S, nullptr);
  bool any = false;
  for (int s = 0; s < S; ++s) {
    const PromptCompressionPlan* plan = batch[s].compression;
    if (plan != nullptr && !plan->empty()) {
      plans_[s] = plan;
      any = true;
    }
  }
  layers_.assign(config.n_layers, {});
  ints_.clear();
  max_prefix_ = max_kv_len_ = max_window_ = max_kept_rows_ = max_keep_ = 0;
  if (!any) return false;
  for (int l = 0; l < config.n_layers; ++l) {
    Layer& layer = layers_[l];
    layer.ints = ints_.size();
    ints_.resize(ints_.size() + LayerIntCount(S), 0);
    int32_t* m = ints_.data() + layer.ints;
    for (int s = 0; s < S; ++s) {
      const int n = ChunkRowsAt(batch[s], l);
      int window = 0, kept = 0, keep = n;
      if (const PromptCompressionPlan* plan = plans_[s]; plan != nullptr) {
        const LayerCompression& lc = plan->layers[l];
        window = lc.window;
        if (window > 0 && lc.keep > 0 && lc.keep < n) {
          // fastkv_freekv keeps every row, reordered: the prefix rows by score, best first (the
          // ones FastKV keeps lead), then the window, so that the kept rows fill the first pages.
          kept = kernels::KeptRowCount(n, window, plan->keep_unselected ? n : lc.keep);
        }
        if (window > 0 && lc.propagate && plan->tsp_keep < n) {
          keep = kernels::KeptRowCount(n, window, plan->tsp_keep);
          layer.propagates = true;
        }
      }
      layer.scored |= window > 0;
      m[Windows(S) + s] = window;
      m[KvLens(S) + s] = window > 0 ? n : 0;
      m[CuPrefix(S) + s + 1] = m[CuPrefix(S) + s] + (window > 0 ? n - window : 0);
      m[CuKept(S) + s + 1] = m[CuKept(S) + s] + kept;
      m[CuKeep(S) + s + 1] = m[CuKeep(S) + s] + keep;
      layer.max_kv_len = std::max(layer.max_kv_len, window > 0 ? n : 0);
      layer.max_window = std::max(layer.max_window, window);
      layer.max_kept = std::max(layer.max_kept, kept);
    }
    // One pooling launch per (pooling, kernel) the plans use, each over its own sequences: a
    // windows array of its own (the others' 0) where the step mixes kinds.
    for (int s = 0; s < S; ++s) {
      if (m[Windows(S) + s] == 0) continue;
      const PoolingLaunch kind{plans_[s]->pool, plans_[s]->pool_kernel, layer.ints};
      auto same = [&](const PoolingLaunch& p) {
        return p.pool == kind.pool && p.kernel == kind.kernel;
      };
      if (std::none_of(layer.poolings.begin(), layer.poolings.end(), same)) {
        layer.poolings.push_back(kind);
      }
    }
    if (layer.poolings.size() > 1) {
      for (PoolingLaunch& p : layer.poolings) {
        p.windows = ints_.size();
        ints_.resize(ints_.size() + S, 0);
        m = ints_.data() + layer.ints;
        for (int s = 0; s < S; ++s) {
          if (m[Windows(S) + s] > 0 && plans_[s]->pool == p.pool &&
              plans_[s]->pool_kernel == p.kernel) {
            ints_[p.windows + s] = m[Windows(S) + s];
          }
        }
      }
    }
    layer.total_prefix = m[CuPrefix(S) + S];
    layer.total_kept = m[CuKept(S) + S];
    layer.total_keep = m[CuKeep(S) + S];
    max_prefix_ = std::max(max_prefix_, layer.total_prefix);
    max_kv_len_ = std::max(max_kv_len_, layer.max_kv_len);
    max_window_ = std::max(max_window_, layer.max_window);
    max_kept_rows_ = std::max(max_kept_rows_, layer.total_kept);
    if (layer.propagates) max_keep_ = std::max(max_keep_, layer.total_keep);
  }
  return true;
}

absl::StatusOr<size_t> PromptCompressor::Layout(char* base) {
  // Per-KV-head selection sorts the most items in the most segments; propagation fewer of both.
  size_t kv_select = 0, tsp_select = 0;
  KVSERVE_RETURN_IF_ERROR(
      CudaStatus(kernels::SelectionScratchBytes(max_prefix_ * n_kv_heads_, num_seqs_ * n_kv_heads_,
                                                &kv_select),
                 "selection scratch size"));
  KVSERVE_RETURN_IF_ERROR(
      CudaStatus(kernels::SelectionScratchBytes(max_prefix_, num_seqs_, &tsp_select),
                 "selection scratch size"));
  select_bytes_ = std::max(kv_select, tsp_select);
  size_t at = 0;
  d_ints_ = Carve<int32_t>(base, &at, ints_.size());
  d_scores_ = Carve<float>(base, &at, size_t(max_prefix_) * n_heads_);
  d_kv_scores_ = Carve<float>(base, &at, size_t(max_prefix_) * n_kv_heads_);
  d_totals_ = Carve<float>(base, &at, size_t(max_prefix_));
  d_window_scratch_ = Carve<float>(
      base, &at, kernels::WindowScoresScratchFloats(num_seqs_, max_kv_len_, n_heads_, max_window_));
  d_kept_rows_ = Carve<int32_t>(base, &at, size_t(max_kept_rows_) * n_kv_heads_);
  d_propagated_ = Carve<int32_t>(base, &at, size_t(max_keep_));
  d_select_scratch_ = Carve<char>(base, &at, select_bytes_);
  d_compact_scratch_ =
      Carve<kernels::Bf16>(base, &at, size_t(max_kept_rows_) * n_kv_heads_ * 2 * head_dim_);
  return at;
}

absl::StatusOr<size_t> PromptCompressor::DeviceBytes() { return Layout(nullptr); }

absl::Status PromptCompressor::Bind(char* base, cudaStream_t stream) {
  KVSERVE_RETURN_IF_ERROR(Layout(base).status());
  recorded_.assign(num_seqs_, {});
  for (int s = 0; s < num_seqs_; ++s) {
    if (plans_[s] != nullptr && plans_[s]->record_scores) recorded_[s].resize(layers_.size());
  }
  return CudaStatus(cudaMemcpyAsync(d_ints_, ints_.data(), ints_.size() * sizeof(int32_t),
                                    cudaMemcpyHostToDevice, stream),
                    "compression metadata upload");
}

kernels::ScoredPrefixes PromptCompressor::Prefixes(const Layer& l, const int32_t* ints) const {
  return {.kv_lens = ints + KvLens(num_seqs_),
          .windows = ints + Windows(num_seqs_),
          .cu_prefix = ints + CuPrefix(num_seqs_),
          .num_seqs = num_seqs_,
          .max_kv_len = l.max_kv_len,
          .max_window = l.max_window,
          .total_prefix = l.total_prefix};
}

absl::Status PromptCompressor::RunLayer(int layer, const kernels::Bf16* qkv, int qkv_row_stride,
                                        const int32_t* cu_seqlens,
                                        const kernels::PagedKvCache& cache, cudaStream_t stream) {
  const Layer& l = layers_[layer];
  if (!l.scored) return absl::OkStatus();
  const int S = num_seqs_;
  const int32_t* ints = d_ints_ + l.ints;
  const kernels::ScoredPrefixes prefixes = Prefixes(l, ints);
  const int32_t* host = LayerInts(l);
  KVSERVE_RETURN_IF_ERROR(CudaStatus(kernels::LaunchWindowScores({.q = qkv,
                                                                  .q_row_stride = qkv_row_stride,
                                                                  .cu_seqlens = cu_seqlens,
                                                                  .prefixes = prefixes,
                                                                  .cache = cache,
                                                                  .n_heads = n_heads_,
                                                                  .scale = scale_,
                                                                  .scores = d_scores_,
                                                                  .scratch = d_window_scratch_},
                                                                 stream),
                                     "window scores"));
  for (const PoolingLaunch& p : l.poolings) {
    kernels::ScoredPrefixes some = prefixes;
    some.windows = d_ints_ + p.windows;
    KVSERVE_RETURN_IF_ERROR(
        CudaStatus(kernels::LaunchScorePooling({.head_scores = d_scores_,
                                                .prefixes = some,
                                                .n_heads = n_heads_,
                                                .n_kv_heads = n_kv_heads_,
                                                .pooling = p.pool,
                                                .kernel = p.kernel,
                                                .kv_scores = d_kv_scores_,
                                                .totals = l.propagates ? d_totals_ : nullptr},
                                               stream),
                   "score pooling"));
  }
  if (l.total_kept > 0) {
    KVSERVE_RETURN_IF_ERROR(
        CudaStatus(kernels::LaunchSelectKvHeadRows({.kv_scores = d_kv_scores_,
                                                    .prefixes = prefixes,
                                                    .n_kv_heads = n_kv_heads_,
                                                    .cu_kept = ints + CuKept(S),
                                                    .kept_rows = d_kept_rows_,
                                                    .scratch = d_select_scratch_,
                                                    .scratch_bytes = select_bytes_},
                                                   stream),
                   "kept rows"));
  }
  if (l.propagates) {
    KVSERVE_RETURN_IF_ERROR(
        CudaStatus(kernels::LaunchSelectPropagatedRows({.totals = d_totals_,
                                                        .prefixes = prefixes,
                                                        .cu_keep = ints + CuKeep(S),
                                                        .rows = d_propagated_,
                                                        .scratch = d_select_scratch_,
                                                        .scratch_bytes = select_bytes_},
                                                       stream),
                   "propagated rows"));
  }
  // What the chunks that record their scores saw, before the next layer reuses the scratch.
  for (int s = 0; s < S; ++s) {
    if (plans_[s] == nullptr || !plans_[s]->record_scores) continue;
    const int window = host[Windows(S) + s];
    const int n = host[KvLens(S) + s];
    if (window == 0) continue;
    PromptLayerScores& r = recorded_[s][layer];
    r.n = n;
    r.window = window;
    const int prefix = n - window;
    r.scores.resize(size_t(n_heads_) * prefix);
    KVSERVE_RETURN_IF_ERROR(CudaStatus(
        cudaMemcpyAsync(r.scores.data(), d_scores_ + size_t(host[CuPrefix(S) + s]) * n_heads_,
                        r.scores.size() * sizeof(float), cudaMemcpyDeviceToHost, stream),
        "recorded scores"));
    const int kept = host[CuKept(S) + s + 1] - host[CuKept(S) + s];
    r.retain.assign(kept > 0 ? n_kv_heads_ : 0, std::vector<int32_t>(kept));
    for (int g = 0; g < static_cast<int>(r.retain.size()); ++g) {
      const size_t at = size_t(host[CuKept(S) + s]) * n_kv_heads_ + size_t(g) * kept;
      KVSERVE_RETURN_IF_ERROR(
          CudaStatus(cudaMemcpyAsync(r.retain[g].data(), d_kept_rows_ + at, kept * sizeof(int32_t),
                                     cudaMemcpyDeviceToHost, stream),
                     "recorded kept rows"));
    }
    const int keep = host[CuKeep(S) + s + 1] - host[CuKeep(S) + s];
    if (l.propagates && keep < n) {
      r.propagate.resize(keep);
      KVSERVE_RETURN_IF_ERROR(
          CudaStatus(cudaMemcpyAsync(r.propagate.data(), d_propagated_ + host[CuKeep(S) + s],
                                     keep * sizeof(int32_t), cudaMemcpyDeviceToHost, stream),
                     "recorded propagated rows"));
    }
    // Pageable host memory: the copies are done when the calls return, before the scratch moves.
  }
  if (l.total_kept == 0) return absl::OkStatus();
  return CudaStatus(kernels::LaunchKvCompaction({.cache = cache,
                                                 .num_seqs = S,
                                                 .cu_kept = ints + CuKept(S),
                                                 .kept_rows = d_kept_rows_,
                                                 .total_kept = l.total_kept,
                                                 .max_kept = l.max_kept,
                                                 .scratch = d_compact_scratch_},
                                                stream),
                    "kv compaction");
}

absl::Status PromptCompressor::Propagate(int layer, const kernels::Bf16* hidden, int cols,
                                         const int32_t* cu_src, const int32_t* positions,
                                         kernels::Bf16* next_hidden, int32_t* next_positions,
                                         cudaStream_t stream) const {
  const Layer& l = layers_[layer];
  return CudaStatus(kernels::LaunchRowGather({.src = hidden,
                                              .src_stride = cols,
                                              .dst = next_hidden,
                                              .dst_stride = cols,
                                              .cols = cols,
                                              .rows = d_propagated_,
                                              .n = l.total_keep,
                                              .cu_src = cu_src,
                                              .cu_dst = d_ints_ + l.ints + CuKeep(num_seqs_),
                                              .num_seqs = num_seqs_,
                                              .src_ids = positions,
                                              .dst_ids = next_positions},
                                             stream),
                    "propagated rows gather");
}

void PromptCompressor::Finish(std::span<const SequenceChunk> batch, int n_layers,
                              std::vector<std::vector<KvRetention>>* retained,
                              std::vector<std::vector<PromptLayerScores>>* recorded) {
  const int S = num_seqs_;
  for (int s = 0; s < S; ++s) {
    if (plans_[s] == nullptr) continue;
    for (int l = 0; l < n_layers; ++l) {
      const int32_t* m = LayerInts(layers_[l]);
      const int kept = m[CuKept(S) + s + 1] - m[CuKept(S) + s];
      if (kept > 0) (*retained)[s].push_back({.layer = l, .length = kept});
    }
    if (!plans_[s]->record_scores) continue;
    // An unscored layer records the rows it ran on.
    for (int l = 0; l < static_cast<int>(recorded_[s].size()); ++l) {
      if (recorded_[s][l].window == 0) recorded_[s][l].n = ChunkRowsAt(batch[s], l);
    }
    (*recorded)[s] = std::move(recorded_[s]);
  }
}

}  // namespace kvserve::cuda
