#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "engine/runtime/backend.h"

namespace kvserve::cuda {

// A maximal run of consecutive chunks that one attention launch serves: all single-token chunks
// (decode: split-K paged decode) or not (flash-attention prefill over the ragged run).
struct AttentionRun {
  bool decode = false;
  int first_seq = 0, num_seqs = 0;
  int first_row = 0, rows = 0;
  int max_seqlen = 0;     // the run's longest chunk
  int max_kv_len = 0;     // its longest cache once the step's tokens are in
  size_t cu_seqlens = 0;  // offset in ints() of the run's own cu_seqlens, starting at 0
};

// Everything the kernels need to know about one Forward step, laid out on the host as one block of
// int32s so a single copy takes it to the device; the offsets say where each array starts.
// Built after the caches grew for the step and before their lengths advance: a chunk's tokens go
// to cache indices [length, length + n) of every layer.
class StepPlan {
 public:
  // `decode_runs`: whether single-token chunks may go to the decode kernel.
  void Build(std::span<const SequenceChunk> batch, int n_layers, bool decode_runs);

  std::span<const int32_t> ints() const { return ints_; }
  int total_rows() const { return total_rows_; }
  int num_seqs() const { return num_seqs_; }
  int logit_rows() const { return logit_rows_; }
  int max_seqlen() const { return max_seqlen_; }
  int page_table_stride() const { return stride_; }
  int32_t max_page() const { return max_page_; }  // -1 when no chunk holds a page
  const std::vector<AttentionRun>& runs() const { return runs_; }

  // Offsets (in int32s) of the arrays in ints().
  size_t tokens() const { return 0; }                                      // [rows]
  size_t positions() const { return total_rows_; }                         // [rows] for RoPE
  size_t cu_seqlens() const { return 2 * size_t(total_rows_); }            // [seqs + 1]
  size_t cache_positions() const { return cu_seqlens() + num_seqs_ + 1; }  // [rows]
  size_t kv_lens() const { return cache_positions() + total_rows_; }       // [seqs], after the step
  size_t logit_row_ids() const { return kv_lens() + num_seqs_; }           // [logit rows]
  // [seqs][stride] page ids of `layer`, unused entries 0.
  size_t page_table(int layer) const {
    return logit_row_ids() + logit_rows_ + size_t(layer) * num_seqs_ * stride_;
  }

 private:
  std::vector<int32_t> ints_;
  std::vector<AttentionRun> runs_;
  int total_rows_ = 0, num_seqs_ = 0, logit_rows_ = 0, max_seqlen_ = 0, stride_ = 0;
  int32_t max_page_ = -1;
};

}  // namespace kvserve::cuda
