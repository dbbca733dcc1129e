#include "engine/runtime/cuda/step_plan.h"

#include <algorithm>

namespace kvserve::cuda {

void StepPlan::Build(std::span<const SequenceChunk> batch, int n_layers, bool decode_runs) {
  num_seqs_ = static_cast<int>(batch.size());
  total_rows_ = logit_rows_ = max_seqlen_ = stride_ = 0;
  max_page_ = -1;
  for (const SequenceChunk& ch : batch) {
    const int n = static_cast<int>(ch.tokens.size());
    total_rows_ += n;
    logit_rows_ += ch.compute_logits ? 1 : 0;
    max_seqlen_ = std::max(max_seqlen_, n);
    for (int l = 0; l < n_layers; ++l) {
      stride_ = std::max(stride_, static_cast<int>(ch.kv->page_table(l).size()));
    }
  }
  ints_.assign(page_table(n_layers), 0);

  int row = 0;
  int logit = 0;
  for (int s = 0; s < num_seqs_; ++s) {
    const SequenceChunk& ch = batch[s];
    const int n = static_cast<int>(ch.tokens.size());
    const int cached = ch.kv->length(0);  // every layer holds the same rows under `full`
    ints_[cu_seqlens() + s] = row;
    for (int i = 0; i < n; ++i) {
      ints_[tokens() + row + i] = ch.tokens[i];
      ints_[positions() + row + i] = ch.positions[i];
      ints_[cache_positions() + row + i] = cached + i;
    }
    ints_[kv_lens() + s] = cached + n;
    row += n;
    if (ch.compute_logits) ints_[logit_row_ids() + logit++] = row - 1;
    for (int l = 0; l < n_layers; ++l) {
      const std::vector<int32_t>& pages = ch.kv->page_table(l);
      std::copy(pages.begin(), pages.end(), ints_.begin() + page_table(l) + size_t(s) * stride_);
      for (int32_t p : pages) max_page_ = std::max(max_page_, p);
    }
  }
  ints_[cu_seqlens() + num_seqs_] = row;

  // Runs of consecutive chunks of one kind; each prefill run gets cu_seqlens rebased to 0.
  runs_.clear();
  for (int s = 0; s < num_seqs_; ++s) {
    const int n = static_cast<int>(batch[s].tokens.size());
    const bool decode = decode_runs && n == 1;
    if (runs_.empty() || runs_.back().decode != decode) {
      runs_.push_back({.decode = decode,
                       .first_seq = s,
                       .first_row = ints_[cu_seqlens() + s],
                       .cu_seqlens = ints_.size()});
      if (!decode) ints_.push_back(0);
    }
    AttentionRun& run = runs_.back();
    ++run.num_seqs;
    run.rows += n;
    run.max_seqlen = std::max(run.max_seqlen, n);
    run.max_kv_len = std::max(run.max_kv_len, ints_[kv_lens() + s]);
    if (!decode) ints_.push_back(run.rows);
  }
}

}  // namespace kvserve::cuda
