#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/model/model_config.h"
#include "engine/runtime/backend.h"
#include "kernels/bf16.h"
#include "kernels/paged_kv_cache.h"
#include "kernels/selection_params.h"

namespace kvserve::cuda {

// Runs the prompt compression plans of one CUDA step on the device (SnapKV and FastKV,
// research/fastkv.md §2-§3): after each layer's attention, window scores, pooling with the GQA
// sum, per-KV-head top-k and compaction of the kept rows to the front of the layer's pages; at a
// FastKV TSP layer also the propagated rows, whose hidden states and positions Propagate gathers
// for the later layers. Once the step is done, Finish trims the host page tables to match.
class PromptCompressor {
 public:
  // Whether `plan` for a whole prompt of `n` tokens is one this compressor runs; InvalidArgument
  // or FailedPrecondition saying why not.
  static absl::Status Check(const PromptCompressionPlan& plan, int n, int n_layers);

  // Reads the step's chunks (in StepPlan order; rows per layer as ChunkRowsAt). False when no
  // chunk compresses. Call DeviceBytes next to size the scratch.
  bool Plan(std::span<const SequenceChunk> batch, const ModelConfig& config);
  // Device bytes this step needs: metadata, scores and kernel scratch.
  absl::StatusOr<size_t> DeviceBytes();
  // Points the compressor into `scratch` (DeviceBytes long) and uploads the metadata on `stream`.
  absl::Status Bind(char* scratch, cudaStream_t stream);

  // Whether `layer` scores some chunk's window, and whether a TSP fires after it.
  bool Scores(int layer) const { return layers_[layer].scored; }
  bool Propagates(int layer) const { return layers_[layer].propagates; }
  // The rows the layers after a propagating `layer` run, summed over the chunks.
  int PropagatedRows(int layer) const { return layers_[layer].total_keep; }

  // After a scored `layer`'s attention: scores the chunks' windows against `cache` (the layer's
  // pages and the step's page table), selects (and, at a TSP layer, picks the propagated rows)
  // and compacts. `qkv` rows follow `cu_seqlens`, the layer's rows.
  absl::Status RunLayer(int layer, const kernels::Bf16* qkv, int qkv_row_stride,
                        const int32_t* cu_seqlens, const kernels::PagedKvCache& cache,
                        cudaStream_t stream);
  // After RunLayer of a `layer` that Propagates: gathers the rows the later layers run, hidden
  // rows (`cols` wide) and positions, from the layer's layout (`cu_src`) to the next one's.
  absl::Status Propagate(int layer, const kernels::Bf16* hidden, int cols, const int32_t* cu_src,
                         const int32_t* positions, kernels::Bf16* next_hidden,
                         int32_t* next_positions, cudaStream_t stream) const;

  // Once the step is done: each compressed chunk's kept row count per layer, in `retained` (per
  // chunk of the batch; the cache's owner applies them), and the chunks whose plan records its
  // scores get them, with the kept and propagated rows, in `recorded`.
  void Finish(std::span<const SequenceChunk> batch, int n_layers,
              std::vector<std::vector<KvRetention>>* retained,
              std::vector<std::vector<PromptLayerScores>>* recorded);

 private:
  // A score pooling launch over the sequences whose windows are at `windows` in ints_.
  struct PoolingLaunch {
    ScorePooling pool = ScorePooling::kMax;
    int kernel = 7;
    size_t windows = 0;
  };
  // What one layer does for the step's chunks; arrays at `ints` in ints_:
  // windows [S] | kv_lens [S] | cu_prefix [S + 1] | cu_kept [S + 1] | cu_keep [S + 1].
  struct Layer {
    bool scored = false, propagates = false;
    size_t ints = 0;
    std::vector<PoolingLaunch> poolings;
    int max_kv_len = 0, max_window = 0, total_prefix = 0, total_kept = 0, max_kept = 0;
    int total_keep = 0;  // the rows the next layer runs (cu_keep's last), where it propagates
  };
  const int32_t* LayerInts(const Layer& l) const { return ints_.data() + l.ints; }
  kernels::ScoredPrefixes Prefixes(const Layer& l, const int32_t* ints) const;
  // Carves the scratch (base null: only counts) and returns its bytes.
  absl::StatusOr<size_t> Layout(char* base);

  int n_heads_ = 0, n_kv_heads_ = 0, head_dim_ = 0, num_seqs_ = 0;
  float scale_ = 0.0f;
  std::vector<const PromptCompressionPlan*> plans_;  // per chunk, null where it does not compress
  std::vector<Layer> layers_;
  std::vector<int32_t> ints_;
  // Most of any layer: they size the scratch.
  int max_prefix_ = 0, max_kv_len_ = 0, max_window_ = 0, max_kept_rows_ = 0, max_keep_ = 0;
  // Device pointers, set by Bind.
  int32_t* d_ints_ = nullptr;
  float *d_scores_ = nullptr, *d_kv_scores_ = nullptr, *d_totals_ = nullptr;
  float* d_window_scratch_ = nullptr;
  int32_t *d_kept_rows_ = nullptr, *d_propagated_ = nullptr;
  void* d_select_scratch_ = nullptr;
  size_t select_bytes_ = 0;
  kernels::Bf16* d_compact_scratch_ = nullptr;
  // Per chunk that records its scores, per layer, filled as the layers run.
  std::vector<std::vector<PromptLayerScores>> recorded_;
};

}  // namespace kvserve::cuda
