#include "engine/runtime/cuda/step_plan.h"

#include <algorithm>

namespace kvserve::cuda {

int ChunkRowsAt(const SequenceChunk& chunk, int layer) {
  const int n = static_cast<int>(chunk.tokens.size());
  if (chunk.compression == nullptr || chunk.compression->empty()) return n;
  return std::min(n, chunk.compression->RowsAt(layer));
}

void StepPlan::Build(std::span<const SequenceChunk> batch, int n_layers, bool decode_runs,
                     std::span<const ArenaPages> arena, int min_stride) {
  auto override_of = [&](int s) { return arena.empty() ? ArenaPages{} : arena[s]; };
  auto table = [&](int s, int l) -> const std::vector<int32_t>& {
    const ArenaPages a = override_of(s);
    return a.tables != nullptr ? (*a.tables)[l] : batch[s].kv->page_table(l);
  };
  num_seqs_ = static_cast<int>(batch.size());
  logit_rows_ = 0;
  stride_ = min_stride;
  max_page_ = -1;
  // Layers whose chunks all run the same rows over caches of the same lengths share a group.
  groups_.clear();
  layer_group_.assign(n_layers, 0);
  auto same_as_previous = [&](int l) {
    for (const SequenceChunk& ch : batch) {
      if (ChunkRowsAt(ch, l) != ChunkRowsAt(ch, l - 1) ||
          ch.kv->length(l) != ch.kv->length(l - 1)) {
        return false;
      }
    }
    return true;
  };
  for (int l = 0; l < n_layers; ++l) {
    if (l == 0 || !same_as_previous(l)) groups_.push_back({.first_layer = l});
    groups_.back().end_layer = l + 1;
    layer_group_[l] = static_cast<int>(groups_.size()) - 1;
  }
  for (int s = 0; s < num_seqs_; ++s) {
    logit_rows_ += batch[s].compute_logits ? 1 : 0;
    for (int l = 0; l < n_layers; ++l) {
      stride_ = std::max(stride_, static_cast<int>(table(s, l).size()));
    }
  }

  ints_.clear();
  auto take = [&](size_t n) {
    const size_t at = ints_.size();
    ints_.resize(at + n, 0);
    return at;
  };
  int input_rows = 0;
  for (const SequenceChunk& ch : batch) input_rows += static_cast<int>(ch.tokens.size());
  take(input_rows);  // tokens
  for (int s = 0, row = 0; s < num_seqs_; ++s) {
    for (int32_t t : batch[s].tokens) ints_[tokens() + row++] = t;
  }
  for (size_t g = 0; g < groups_.size(); ++g) {
    LayerGroup& group = groups_[g];
    const int l = group.first_layer;
    int rows = 0;
    for (const SequenceChunk& ch : batch) rows += ChunkRowsAt(ch, l);
    group.total_rows = rows;
    group.max_seqlen = 0;
    // Rows change only where a TSP fired: the device gathers that group's positions; a group of
    // the same rows as the one before shares its positions.
    group.propagated = false;
    for (const SequenceChunk& ch : batch) {
      group.propagated |= g > 0 && ChunkRowsAt(ch, l) != ChunkRowsAt(ch, l - 1);
    }
    group.positions = g == 0 || group.propagated ? take(rows) : groups_[g - 1].positions;
    group.cu_seqlens = take(num_seqs_ + 1);
    group.cache_positions = take(rows);
    group.kv_lens = take(num_seqs_);
    int row = 0;
    for (int s = 0; s < num_seqs_; ++s) {
      const SequenceChunk& ch = batch[s];
      const int n = ChunkRowsAt(ch, l);
      const int cached = ch.kv->length(l);
      group.max_seqlen = std::max(group.max_seqlen, n);
      ints_[group.cu_seqlens + s] = row;
      for (int i = 0; i < n; ++i) {
        // Later groups share these positions or gather theirs on the device.
        if (g == 0) ints_[group.positions + row + i] = ch.positions[i];
        ints_[group.cache_positions + row + i] = cached + i;
      }
      ints_[group.kv_lens + s] = cached + n;
      row += n;
    }
    ints_[group.cu_seqlens + num_seqs_] = row;

    // Runs of consecutive chunks of one kind; each prefill run gets cu_seqlens rebased to 0.
    group.runs.clear();
    for (int s = 0; s < num_seqs_; ++s) {
      const int n = ChunkRowsAt(batch[s], l);
      const bool decode = decode_runs && n == 1;
      const bool sparse = decode && override_of(s).sparse_decode;
      if (group.runs.empty() || group.runs.back().decode != decode ||
          group.runs.back().sparse != sparse) {
        group.runs.push_back({.decode = decode,
                              .sparse = sparse,
                              .first_seq = s,
                              .first_row = ints_[group.cu_seqlens + s],
                              .cu_seqlens = ints_.size()});
        if (!decode) ints_.push_back(0);
      }
      AttentionRun& run = group.runs.back();
      ++run.num_seqs;
      run.rows += n;
      run.max_seqlen = std::max(run.max_seqlen, n);
      run.max_kv_len = std::max(run.max_kv_len, ints_[group.kv_lens + s]);
      if (!decode) ints_.push_back(run.rows);
    }
  }

  // The LM head reads the last row of each chunk that wants logits, after the last layer.
  const LayerGroup& last = groups_.back();
  logit_ids_ = take(logit_rows_);
  for (int s = 0, logit = 0; s < num_seqs_; ++s) {
    if (batch[s].compute_logits) {
      ints_[logit_ids_ + logit++] = ints_[last.cu_seqlens + s + 1] - 1;
    }
  }
  page_tables_ = take(size_t(n_layers) * num_seqs_ * stride_);
  for (int s = 0; s < num_seqs_; ++s) {
    for (int l = 0; l < n_layers; ++l) {
      const std::vector<int32_t>& pages = table(s, l);
      std::copy(pages.begin(), pages.end(), ints_.begin() + page_table(l) + size_t(s) * stride_);
      if (override_of(s).tables != nullptr) continue;
      for (int32_t p : pages) max_page_ = std::max(max_page_, p);
    }
  }
}

}  // namespace kvserve::cuda
