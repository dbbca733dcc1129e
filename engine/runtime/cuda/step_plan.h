#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "engine/runtime/backend.h"

namespace kvserve::cuda {

// Rows `chunk` runs at `layer`: its tokens, or past a FastKV prompt's TSP layer the plan's
// tsp_keep (research/fastkv.md §2.4).
int ChunkRowsAt(const SequenceChunk& chunk, int layer);

// A maximal run of consecutive chunks that one attention launch serves: all single-token chunks
// (decode: split-K paged decode) or not (flash-attention prefill over the ragged run).
struct AttentionRun {
  bool decode = false;
  bool sparse = false;  // decode over each KV head's page list (quest/freekv: TieredDecode)
  int first_seq = 0, num_seqs = 0;
  int first_row = 0, rows = 0;
  int max_seqlen = 0;     // the run's longest chunk
  int max_kv_len = 0;     // its longest cache once the step's tokens are in
  size_t cu_seqlens = 0;  // offset in ints() of the run's own cu_seqlens, starting at 0
};

// Consecutive layers whose chunks run the same rows over caches of the same lengths: every layer
// of a `full` step; FastKV's layers up to and after its TSP layer; decode steps over the per-layer
// lengths a compressing policy left. Offsets are in StepPlan::ints().
struct LayerGroup {
  int first_layer = 0, end_layer = 0;  // [first_layer, end_layer)
  int total_rows = 0, max_seqlen = 0;
  // Its rows are a token-selective propagation of the previous group's: the device gathers its
  // positions (the host cannot know them); otherwise the host wrote them.
  bool propagated = false;
  size_t positions = 0;        // [rows] for RoPE
  size_t cu_seqlens = 0;       // [seqs + 1]
  size_t cache_positions = 0;  // [rows] each row's index in its cache
  size_t kv_lens = 0;          // [seqs], after the step
  std::vector<AttentionRun> runs;
};

// Where a chunk's rows live in the device arena when its cache's page ids are not arena pages (a
// tiered policy's cache is in the host tier): per layer, the arena page of each logical page the
// step appends to or attends over (others 0); and whether its decode reads page lists instead.
struct ArenaPages {
  const std::vector<std::vector<int32_t>>* tables = nullptr;  // [layer][logical page]; null: own
  bool sparse_decode = false;
};

// Everything the kernels need to know about one Forward step, laid out on the host as one block of
// int32s so a single copy takes it to the device; the offsets say where each array starts.
// Built after the caches grew for the step and before their lengths advance: a chunk's rows at a
// layer go to cache indices [length(layer), length(layer) + rows) of that layer.
class StepPlan {
 public:
  // `decode_runs`: whether single-token chunks may go to the decode kernel. `arena`: per chunk
  // (or empty), pages that replace its cache's page tables; they do not count in max_page().
  // `min_stride`: page tables at least this wide (a CUDA graph's steps keep one layout).
  void Build(std::span<const SequenceChunk> batch, int n_layers, bool decode_runs,
             std::span<const ArenaPages> arena = {}, int min_stride = 0);

  std::span<const int32_t> ints() const { return ints_; }
  int total_rows() const { return groups_.front().total_rows; }  // the step's input rows, the most
  int num_seqs() const { return num_seqs_; }
  int logit_rows() const { return logit_rows_; }
  int page_table_stride() const { return stride_; }
  // The largest page id of a chunk's own page tables; -1 when no chunk holds a page.
  int32_t max_page() const { return max_page_; }
  const std::vector<LayerGroup>& groups() const { return groups_; }
  const LayerGroup& group(int layer) const { return groups_[layer_group_[layer]]; }

  // Offsets (in int32s) of the arrays in ints().
  size_t tokens() const { return 0; }                  // [input rows]
  size_t logit_row_ids() const { return logit_ids_; }  // [logit rows], rows of the last group
  // [seqs][stride] page ids of `layer`, unused entries 0.
  size_t page_table(int layer) const { return page_tables_ + size_t(layer) * num_seqs_ * stride_; }

 private:
  std::vector<int32_t> ints_;
  std::vector<LayerGroup> groups_;
  std::vector<int> layer_group_;
  int num_seqs_ = 0, logit_rows_ = 0, stride_ = 0;
  size_t logit_ids_ = 0, page_tables_ = 0;
  int32_t max_page_ = -1;
};

}  // namespace kvserve::cuda
