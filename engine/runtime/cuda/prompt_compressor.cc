#include "engine/runtime/cuda/prompt_compressor.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/runtime/cuda/cuda_status.h"
#include "engine/runtime/cuda/device_memory_pool.h"
#include "kernels/kv_compaction.h"
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

}  // namespace

absl::Status PromptCompressor::Check(const PromptCompressionPlan& plan, int n_layers) {
  if (plan.empty()) return absl::OkStatus();
  if (static_cast<int>(plan.layers.size()) != n_layers) {
    return absl::InvalidArgumentError("the prompt compression plan does not list every layer");
  }
  for (const LayerCompression& lc : plan.layers) {
    if (lc.propagate) {
      return absl::FailedPreconditionError(
          "token-selective propagation is not supported by the cuda backend yet");
    }
    if (lc.window != plan.layers[0].window || lc.keep != plan.layers[0].keep) {
      return absl::FailedPreconditionError(
          "per-layer compression budgets are not supported by the cuda backend yet");
    }
  }
  if (plan.keep_unselected) {
    return absl::FailedPreconditionError(
        "a plan that keeps unselected rows (a tiered policy) is not supported by the cuda "
        "backend yet");
  }
  return absl::OkStatus();
}

bool PromptCompressor::Plan(std::span<const SequenceChunk> batch, const ModelConfig& config) {
  n_heads_ = config.n_heads;
  n_kv_heads_ = config.n_kv_heads;
  head_dim_ = config.head_dim;
  scale_ = 1.0f / std::sqrt(static_cast<float>(config.head_dim));
  num_seqs_ = static_cast<int>(batch.size());
  ints_.assign(3 * size_t(num_seqs_) + 2, 0);
  int32_t* windows = ints_.data();
  int32_t* cu_prefix = windows + num_seqs_;
  int32_t* cu_kept = cu_prefix + num_seqs_ + 1;
  kept_.assign(num_seqs_, 0);
  max_kv_len_ = max_window_ = total_prefix_ = total_kept_ = max_kept_ = 0;
  bool any = false;
  for (int s = 0; s < num_seqs_; ++s) {
    const SequenceChunk& ch = batch[s];
    // A compressed chunk is a whole prompt on an empty cache: its rows are its tokens (not the
    // cache's length, into which the backend has already counted the step's rows).
    const int n = static_cast<int>(ch.tokens.size());
    max_kv_len_ = std::max(max_kv_len_, n);
    int window = 0, keep = 0;
    if (ch.compression != nullptr && !ch.compression->empty()) {
      const LayerCompression& lc = ch.compression->layers[0];
      if (lc.window > 0 && lc.window < n && lc.keep > 0 && lc.keep < n) {
        window = lc.window;
        keep = kernels::KeptRowCount(n, window, lc.keep);
        pooling_ = ch.compression->pool;
        pool_kernel_ = ch.compression->pool_kernel;
        any = true;
      }
    }
    windows[s] = window;
    cu_prefix[s + 1] = cu_prefix[s] + (window > 0 ? n - window : 0);
    cu_kept[s + 1] = cu_kept[s] + keep;
    kept_[s] = keep;
    max_window_ = std::max(max_window_, window);
    max_kept_ = std::max(max_kept_, keep);
  }
  total_prefix_ = cu_prefix[num_seqs_];
  total_kept_ = cu_kept[num_seqs_];
  return any;
}

absl::StatusOr<size_t> PromptCompressor::DeviceBytes() const {
  size_t select = 0;
  KVSERVE_RETURN_IF_ERROR(CudaStatus(
      kernels::SelectionScratchBytes(total_prefix_ * n_kv_heads_, num_seqs_ * n_kv_heads_, &select),
      "selection scratch size"));
  size_t at = 0;
  Carve<int32_t>(nullptr, &at, ints_.size());
  Carve<float>(nullptr, &at, size_t(total_prefix_) * n_heads_);
  Carve<float>(nullptr, &at, size_t(total_prefix_) * n_kv_heads_);
  Carve<float>(nullptr, &at,
               kernels::WindowScoresScratchFloats(num_seqs_, max_kv_len_, n_heads_, max_window_));
  Carve<int32_t>(nullptr, &at, size_t(total_kept_) * n_kv_heads_);
  Carve<char>(nullptr, &at, select);
  Carve<kernels::Bf16>(nullptr, &at, CompactionScratch());
  return at;
}

absl::Status PromptCompressor::Bind(char* base, cudaStream_t stream) {
  KVSERVE_RETURN_IF_ERROR(
      CudaStatus(kernels::SelectionScratchBytes(total_prefix_ * n_kv_heads_,
                                                num_seqs_ * n_kv_heads_, &select_bytes_),
                 "selection scratch size"));
  size_t at = 0;
  d_ints_ = Carve<int32_t>(base, &at, ints_.size());
  d_scores_ = Carve<float>(base, &at, size_t(total_prefix_) * n_heads_);
  d_kv_scores_ = Carve<float>(base, &at, size_t(total_prefix_) * n_kv_heads_);
  d_window_scratch_ = Carve<float>(
      base, &at, kernels::WindowScoresScratchFloats(num_seqs_, max_kv_len_, n_heads_, max_window_));
  d_kept_rows_ = Carve<int32_t>(base, &at, size_t(total_kept_) * n_kv_heads_);
  d_select_scratch_ = Carve<char>(base, &at, select_bytes_);
  d_compact_scratch_ = Carve<kernels::Bf16>(base, &at, CompactionScratch());
  return CudaStatus(cudaMemcpyAsync(d_ints_, ints_.data(), ints_.size() * sizeof(int32_t),
                                    cudaMemcpyHostToDevice, stream),
                    "compression metadata upload");
}

absl::Status PromptCompressor::RunLayer(const kernels::Bf16* qkv, int qkv_row_stride,
                                        const int32_t* cu_seqlens, const int32_t* kv_lens,
                                        const kernels::PagedKvCache& cache,
                                        cudaStream_t stream) const {
  const int32_t* windows = d_ints_;
  const int32_t* cu_prefix = windows + num_seqs_;
  const int32_t* cu_kept = cu_prefix + num_seqs_ + 1;
  const kernels::ScoredPrefixes prefixes{.kv_lens = kv_lens,
                                         .windows = windows,
                                         .cu_prefix = cu_prefix,
                                         .num_seqs = num_seqs_,
                                         .max_kv_len = max_kv_len_,
                                         .max_window = max_window_,
                                         .total_prefix = total_prefix_};
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
  KVSERVE_RETURN_IF_ERROR(CudaStatus(kernels::LaunchScorePooling({.head_scores = d_scores_,
                                                                  .prefixes = prefixes,
                                                                  .n_heads = n_heads_,
                                                                  .n_kv_heads = n_kv_heads_,
                                                                  .pooling = pooling_,
                                                                  .kernel = pool_kernel_,
                                                                  .kv_scores = d_kv_scores_},
                                                                 stream),
                                     "score pooling"));
  KVSERVE_RETURN_IF_ERROR(
      CudaStatus(kernels::LaunchSelectKvHeadRows({.kv_scores = d_kv_scores_,
                                                  .prefixes = prefixes,
                                                  .n_kv_heads = n_kv_heads_,
                                                  .cu_kept = cu_kept,
                                                  .kept_rows = d_kept_rows_,
                                                  .scratch = d_select_scratch_,
                                                  .scratch_bytes = select_bytes_},
                                                 stream),
                 "kept rows"));
  return CudaStatus(kernels::LaunchKvCompaction({.cache = cache,
                                                 .num_seqs = num_seqs_,
                                                 .cu_kept = cu_kept,
                                                 .kept_rows = d_kept_rows_,
                                                 .total_kept = total_kept_,
                                                 .max_kept = max_kept_,
                                                 .scratch = d_compact_scratch_},
                                                stream),
                    "kv compaction");
}

void PromptCompressor::Finish(std::span<const SequenceChunk> batch, int n_layers) const {
  for (size_t s = 0; s < batch.size(); ++s) {
    if (kept_[s] == 0) continue;
    for (int l = 0; l < n_layers; ++l) batch[s].kv->Truncate(l, kept_[s]);
  }
}

}  // namespace kvserve::cuda
