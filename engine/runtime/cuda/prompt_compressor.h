#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "engine/model/model_config.h"
#include "engine/runtime/backend.h"
#include "kernels/bf16.h"
#include "kernels/paged_kv_cache.h"

namespace kvserve::cuda {

// Runs the prompt compression plans of one CUDA step on the device (SnapKV: after each layer's
// attention, window scores, pooling with the GQA sum, per-KV-head top-k and compaction of the
// kept rows to the front of the layer's pages), then trims the host page tables to match. Takes
// plans whose layers all score the same window and keep the same rows (every layer ends the same
// length, which the dense decode plan needs) and that do not propagate; FastKV's TSP is not here.
class PromptCompressor {
 public:
  // Whether `plan` is one this compressor runs; InvalidArgument saying why not.
  static absl::Status Check(const PromptCompressionPlan& plan, int n_layers);

  // Reads the step's chunks (in StepPlan order; their token counts are the prompts). False when no
  // chunk compresses. Call DeviceBytes next to size the scratch.
  bool Plan(std::span<const SequenceChunk> batch, const ModelConfig& config);
  // Device bytes this step needs: metadata, scores and kernel scratch.
  absl::StatusOr<size_t> DeviceBytes() const;
  // Points the compressor into `scratch` (DeviceBytes long) and uploads the metadata on `stream`.
  absl::Status Bind(char* scratch, cudaStream_t stream);
  // After `layer`'s attention: scores the chunks' windows against `cache` (the layer's pages and
  // the step's page table), selects and compacts. `qkv` rows follow `cu_seqlens`; `kv_lens` are
  // the caches' lengths after the step.
  absl::Status RunLayer(const kernels::Bf16* qkv, int qkv_row_stride, const int32_t* cu_seqlens,
                        const int32_t* kv_lens, const kernels::PagedKvCache& cache,
                        cudaStream_t stream) const;
  // Once the step is done: each compressed chunk's host cache keeps its kept row count.
  void Finish(std::span<const SequenceChunk> batch, int n_layers) const;

 private:
  // bf16 elements the compaction moves through: every kept K and V row.
  size_t CompactionScratch() const { return size_t(total_kept_) * n_kv_heads_ * 2 * head_dim_; }

  int n_heads_ = 0, n_kv_heads_ = 0, head_dim_ = 0;
  float scale_ = 0.0f;
  kernels::ScorePooling pooling_ = kernels::ScorePooling::kMax;
  int pool_kernel_ = 7;
  std::vector<int32_t> ints_;  // windows [S] | cu_prefix [S + 1] | cu_kept [S + 1]
  std::vector<int> kept_;      // per chunk, rows each KV head keeps (0: not compressed)
  int num_seqs_ = 0, max_kv_len_ = 0, max_window_ = 0, total_prefix_ = 0;
  int total_kept_ = 0, max_kept_ = 0;
  // Device pointers, set by Bind.
  int32_t* d_ints_ = nullptr;
  float *d_scores_ = nullptr, *d_kv_scores_ = nullptr, *d_window_scratch_ = nullptr;
  int32_t* d_kept_rows_ = nullptr;
  void* d_select_scratch_ = nullptr;
  size_t select_bytes_ = 0;
  kernels::Bf16* d_compact_scratch_ = nullptr;
};

}  // namespace kvserve::cuda
