#include "engine/runtime/cuda/tiered_decode.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "kernels/ceil_div.h"

// TieredDecode's host side of a step: where each tiered chunk's rows go in the arena (staging
// pages or its budget slots), what the host tier receives, which pages get digests, and the lists
// the host already knows; all as int32s uploaded once.
namespace kvserve::cuda {
namespace {

// Heads of a list all get the same host-chosen pages: counts, then pages and slots per head.
void FillHostList(std::vector<int32_t>& ints, size_t at, int heads, std::span<const int32_t> pages,
                  std::span<const int32_t> slots) {
  const int n = static_cast<int>(pages.size());
  for (int h = 0; h < heads; ++h) {
    ints[at + h] = n;
    std::copy(pages.begin(), pages.end(), ints.begin() + at + heads + size_t(h) * n);
    std::copy(slots.begin(), slots.end(), ints.begin() + at + heads + size_t(heads) * n + h * n);
  }
}

}  // namespace

size_t TieredDecode::Take(size_t n) {
  std::vector<int32_t>& h = host_[parity_];
  const size_t at = h.size();
  h.resize(at + n, 0);
  return at;
}

size_t TieredDecode::TakeDevice(size_t n) {
  const size_t at = device_ints_;
  device_ints_ += n;
  return at;  // relative to the end of the host ints until Plan ends
}

absl::Status TieredDecode::Plan(std::span<const SequenceChunk> batch,
                                const kernels::PagedKvLayout& kv) {
  kv_ = kv;
  parity_ ^= 1;
  chunks_.clear();
  arena_.assign(batch.size(), {});
  chunk_of_seq_.assign(batch.size(), -1);
  host_[parity_].clear();
  staging_refs_.clear();
  device_ints_ = 0;
  staging_per_buffer_ = 0;
  max_budget_page_ = -1;
  max_slots_ = 0;
  const int L = config_.n_layers, H = config_.n_kv_heads, P = kv.page_size;
  host_writes_.assign(L, {});
  staged_writes_.assign(L, {});
  int64_t max_host_page = -1;
  for (size_t s = 0; s < batch.size(); ++s) {
    const SequenceChunk& ch = batch[s];
    if (ch.policy == nullptr || !IsTieredKvPolicy(ch.policy->name())) continue;
    Chunk c;
    c.seq = static_cast<int>(s);
    c.policy = static_cast<TieredKvPolicy*>(ch.policy);
    c.state = static_cast<TieredSequenceState*>(c.policy->backend_state());
    c.freekv = c.policy->mode() == TieredKvPolicy::Mode::kFreeKv;
    c.tau = c.policy->tau();
    c.digest = c.policy->digest();
    const kernels::TieredLayout& lay = c.state->layout();
    max_slots_ = std::max(max_slots_, lay.slots);
    for (int l = 0; l < L; ++l) {
      for (int32_t p : c.policy->budget().layer_pages(l)) {
        max_budget_page_ = std::max(max_budget_page_, p);
      }
    }
    c.decode = ch.kind == ChunkKind::kDecode;  // the step plan's: a prompt may end in one token
    c.tables.resize(L);
    c.layers.resize(L);
    int staged_pages = 0;
    for (int l = 0; l < L; ++l) {
      LayerPlan& lp = c.layers[l];
      const int before = ch.kv->length(l);
      const int after = before + ChunkRowsAt(ch, l);
      const int pages_after = CeilDiv(after, P);
      const std::vector<int32_t>& host_table = ch.kv->page_table(l);
      if (static_cast<int>(host_table.size()) < pages_after) {
        return absl::InternalError("forward: a tiered cache's host pages were not grown");
      }
      for (int32_t p : host_table) max_host_page = std::max<int64_t>(max_host_page, p);
      lp.host_stride = static_cast<int>(host_table.size());
      lp.host_table = Take(host_table.size());
      std::copy(host_table.begin(), host_table.end(), host_[parity_].begin() + lp.host_table);
      lp.lens = Take(2);
      host_[parity_][lp.lens] = after;
      host_[parity_][lp.lens + 1] = before;
      std::vector<int32_t> list_pages, list_slots;
      const std::span<const int32_t> budget = c.policy->budget().layer_pages(l);
      std::vector<int32_t> digest_src, digest_rows;
      if (c.decode) {
        const int32_t newest = (after - 1) / P;
        lp.sparse = pages_after > lay.slots;
        const int32_t slot = lp.sparse ? NewestPageSlot(lay, newest) : newest;
        c.tables[l].assign(newest + 1, 0);
        c.tables[l][newest] = budget[slot];
        if (!lp.sparse) {
          // Dense: page i in slot i; pages the budget does not hold yet come from the host tier.
          for (int32_t p = c.state->dense_resident[l]; p < CeilDiv(before, P); ++p) {
            list_pages.push_back(p);
            list_slots.push_back(p);
          }
        }
        lp.dense_resident_after = lp.sparse ? 0 : pages_after;
        host_writes_[l].push_back({.src_page = budget[slot],
                                   .dst_page = host_table[newest],
                                   .first_row = (after - 1) % P,
                                   .rows = 1});
        if (after % P == 0) {
          digest_src.push_back(budget[slot]);
          digest_rows.push_back(newest);
        }
        const int R = std::max(1, lay.retrieved());
        lp.extend = {TakeDevice(H * (1 + 2 * size_t(lay.slots))), lay.slots};
        lp.select = {TakeDevice(H * (1 + 2 * size_t(R))), R};
        lp.spec = {TakeDevice(H * (1 + 2 * size_t(R))), R};
        lp.flags = TakeDevice(CeilDiv(H, 4));
      } else {
        // Staged prefill: the sequence's pages in staging, the earlier ones gathered first.
        staged_pages = std::max(staged_pages, pages_after);
        c.tables[l].resize(pages_after);
        for (int j = 0; j < pages_after; ++j) c.tables[l][j] = staging_per_buffer_ + j;
        const int earlier = CeilDiv(before, P);
        lp.n_targets = earlier;
        lp.target = Take(earlier);
        for (int j = 0; j < earlier; ++j) {
          host_[parity_][lp.target + j] = staging_per_buffer_ + j;
          staging_refs_.push_back({lp.target + j, l});
          list_pages.push_back(j);
          list_slots.push_back(j);
        }
        for (int j = before / P; j < pages_after; ++j) {
          const int first = j == before / P ? before % P : 0;
          staged_writes_[l].push_back(host_writes_[l].size());
          host_writes_[l].push_back({.src_page = staging_per_buffer_ + j,
                                     .dst_page = host_table[j],
                                     .first_row = first,
                                     .rows = std::min(P, after - j * P) - first});
        }
        for (int j = before / P; j < after / P; ++j) {
          digest_src.push_back(staging_per_buffer_ + j);
          digest_rows.push_back(j);
        }
        lp.dense_resident_after = 0;
      }
      if (!list_pages.empty()) {
        const int n = static_cast<int>(list_pages.size());
        lp.host_list = {Take(H * (1 + 2 * size_t(n))), n};
        FillHostList(host_[parity_], lp.host_list.at, H, list_pages, list_slots);
      }
      lp.n_digests = static_cast<int>(digest_src.size());
      lp.digest_src = Take(digest_src.size());
      lp.digest_rows = Take(digest_rows.size());
      std::copy(digest_src.begin(), digest_src.end(), host_[parity_].begin() + lp.digest_src);
      std::copy(digest_rows.begin(), digest_rows.end(), host_[parity_].begin() + lp.digest_rows);
      if (!c.decode) {
        for (int i = 0; i < lp.n_digests; ++i) staging_refs_.push_back({lp.digest_src + i, l});
      }
    }
    staging_per_buffer_ += staged_pages;
    arena_[s] = {.tables = nullptr, .sparse_decode = c.decode};
    chunk_of_seq_[s] = static_cast<int>(chunks_.size());
    chunks_.push_back(std::move(c));
  }
  for (size_t i = 0; i < chunks_.size(); ++i) arena_[chunks_[i].seq].tables = &chunks_[i].tables;
  // Host tier copies per layer; staging sources are patched with the base later.
  host_writes_at_.assign(L, 0);
  for (int l = 0; l < L; ++l) {
    host_writes_at_[l] = Take(4 * host_writes_[l].size());
    for (size_t i = 0; i < host_writes_[l].size(); ++i) {
      const kernels::PageRowCopy& copy = host_writes_[l][i];
      const size_t at = host_writes_at_[l] + 4 * i;
      host_[parity_][at] = copy.src_page;
      host_[parity_][at + 1] = copy.dst_page;
      host_[parity_][at + 2] = copy.first_row;
      host_[parity_][at + 3] = copy.rows;
    }
    for (size_t i : staged_writes_[l]) staging_refs_.push_back({host_writes_at_[l] + 4 * i, l});
  }
  int sparse_decodes = 0;
  for (const Chunk& c : chunks_) sparse_decodes += c.decode ? 1 : 0;
  lists_at_ = TakeDevice(size_t(sparse_decodes) * H * (1 + 2 * size_t(std::max(1, max_slots_))));
  // Device-written ints follow the host ones.
  const size_t host_ints = host_[parity_].size();
  for (Chunk& c : chunks_) {
    for (LayerPlan& lp : c.layers) {
      if (!c.decode) continue;
      lp.extend.at += host_ints;
      lp.select.at += host_ints;
      lp.spec.at += host_ints;
      lp.flags += host_ints;
    }
  }
  lists_at_ += host_ints;
  if (max_host_page >= 0) {
    KVSERVE_RETURN_IF_ERROR(host_tier_.Ensure(kv, max_host_page + 1));
  }
  return absl::OkStatus();
}

void TieredDecode::SetStagingBase(int32_t base) {
  // Layer l stages in buffer l % 2, the buffers one after the other from `base`.
  auto shift = [&](int layer) { return base + (layer % 2) * staging_per_buffer_; };
  for (const auto& [at, layer] : staging_refs_) host_[parity_][at] += shift(layer);
  for (Chunk& c : chunks_) {
    if (c.decode) continue;
    for (size_t l = 0; l < c.tables.size(); ++l) {
      for (int32_t& p : c.tables[l]) p += shift(static_cast<int>(l));
    }
  }
}

}  // namespace kvserve::cuda
