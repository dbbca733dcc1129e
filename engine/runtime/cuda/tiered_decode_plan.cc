#include <algorithm>
#include <bit>
#include <map>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/runtime/cuda/tiered_decode.h"
#include "kernels/ceil_div.h"

// TieredDecode's host side of a step: where each tiered chunk's rows go in the arena (staging
// pages or its budget slots), what the host tier receives, which pages get digests, and the lists
// the host already knows; all as int32s uploaded once, each array over every decode (or prefill)
// chunk of the step so that one launch serves them all.
namespace kvserve::cuda {
namespace {

// One chunk's layer, before the step's arrays are laid out.
struct ChunkLayer {
  int before = 0, after = 0;
  const std::vector<int32_t>* host_table = nullptr;
  std::vector<int32_t> targets;  // decode: the budget's arena pages; prefill: staging pages
  std::vector<int32_t> list_pages, list_slots;  // host-chosen placements
};

// A page whose digest the step builds: its arena page, whether that is a staging page (patched
// with the base later), its digest row.
struct DigestPage {
  int32_t src = 0;
  bool staged = false;
  int32_t row = 0;
};

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

TieredDecode::ListAt TieredDecode::TakeList(int units, int capacity, bool device) {
  const size_t n = size_t(units) * (1 + 2 * size_t(capacity));
  return {.at = device ? TakeDevice(n) : Take(n), .capacity = capacity, .units = units};
}

absl::Status TieredDecode::Plan(std::span<const SequenceChunk> batch,
                                const kernels::PagedKvLayout& kv) {
  kv_ = kv;
  parity_ ^= 1;
  chunks_.clear();
  groups_.clear();
  decode_chunks_.clear();
  prefill_chunks_.clear();
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
  decode_layers_.assign(L, {});
  prefill_layers_.assign(L, {});
  int64_t max_host_page = -1;
  int max_retrieved = 1;
  // [chunk][layer]
  std::vector<std::vector<ChunkLayer>> planned;
  // [layer] (decode?, pool, kind) -> pages
  using DigestKey = std::tuple<bool, TieredStatePool*, kernels::PageDigestKind>;
  std::vector<std::map<DigestKey, std::vector<DigestPage>>> digests(L);

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
    c.decode = ch.kind == ChunkKind::kDecode;  // the step plan's: a prompt may end in one token
    c.index = static_cast<int>(c.decode ? decode_chunks_.size() : prefill_chunks_.size());
    (c.decode ? decode_chunks_ : prefill_chunks_).push_back(static_cast<int>(chunks_.size()));
    const kernels::TieredLayout& lay = c.state->layout();
    TieredStatePool* pool = &c.state->pool();
    const int32_t first_row = c.state->row() * pool->max_pages();
    max_slots_ = std::max(max_slots_, lay.slots);
    max_retrieved = std::max(max_retrieved, lay.retrieved());
    for (int l = 0; l < L; ++l) {
      for (int32_t p : c.policy->budget().layer_pages(l)) {
        max_budget_page_ = std::max(max_budget_page_, p);
      }
    }
    c.tables.resize(L);
    c.layers.resize(L);
    std::vector<ChunkLayer>& layers = planned.emplace_back(L);
    int staged_pages = 0;
    for (int l = 0; l < L; ++l) {
      LayerPlan& lp = c.layers[l];
      ChunkLayer& cl = layers[l];
      cl.before = ch.kv->length(l);
      cl.after = cl.before + ChunkRowsAt(ch, l);
      const int pages_after = CeilDiv(cl.after, P);
      const std::vector<int32_t>& host_table = ch.kv->page_table(l);
      if (static_cast<int>(host_table.size()) < pages_after) {
        return absl::InternalError("forward: a tiered cache's host pages were not grown");
      }
      for (int32_t p : host_table) max_host_page = std::max<int64_t>(max_host_page, p);
      cl.host_table = &host_table;
      std::vector<DigestPage>& digest_pages = digests[l][{c.decode, pool, c.digest}];
      if (c.decode) {
        const std::span<const int32_t> budget = c.policy->budget().layer_pages(l);
        cl.targets.assign(budget.begin(), budget.end());
        const int32_t newest = (cl.after - 1) / P;
        lp.sparse = pages_after > lay.slots;
        const int32_t slot = lp.sparse ? NewestPageSlot(lay, newest) : newest;
        c.tables[l].assign(newest + 1, 0);
        c.tables[l][newest] = budget[slot];
        if (!lp.sparse) {
          // Dense: page i in slot i; pages the budget does not hold yet come from the host tier.
          for (int32_t p = c.state->dense_resident[l]; p < CeilDiv(cl.before, P); ++p) {
            cl.list_pages.push_back(p);
            cl.list_slots.push_back(p);
          }
        }
        lp.dense_resident_after = lp.sparse ? 0 : pages_after;
        decode_layers_[l].any_sparse |= lp.sparse;
        host_writes_[l].push_back({.src_page = budget[slot],
                                   .dst_page = host_table[newest],
                                   .first_row = (cl.after - 1) % P,
                                   .rows = 1});
        // Every decode chunk has an entry, -1 unless its page filled: the launch is the same
        // from step to step (CUDA graphs).
        digest_pages.push_back({cl.after % P == 0 ? budget[slot] : -1, false, first_row + newest});
      } else {
        // Staged prefill: the sequence's pages in staging, the earlier ones gathered first.
        staged_pages = std::max(staged_pages, pages_after);
        c.tables[l].resize(pages_after);
        for (int j = 0; j < pages_after; ++j) c.tables[l][j] = staging_per_buffer_ + j;
        const int earlier = CeilDiv(cl.before, P);
        for (int j = 0; j < earlier; ++j) {
          cl.targets.push_back(staging_per_buffer_ + j);
          cl.list_pages.push_back(j);
          cl.list_slots.push_back(j);
        }
        for (int j = cl.before / P; j < pages_after; ++j) {
          const int first = j == cl.before / P ? cl.before % P : 0;
          staged_writes_[l].push_back(host_writes_[l].size());
          host_writes_[l].push_back({.src_page = staging_per_buffer_ + j,
                                     .dst_page = host_table[j],
                                     .first_row = first,
                                     .rows = std::min(P, cl.after - j * P) - first});
        }
        for (int j = cl.before / P; j < cl.after / P; ++j) {
          digest_pages.push_back({staging_per_buffer_ + j, true, first_row + j});
        }
        lp.dense_resident_after = 0;
      }
    }
    staging_per_buffer_ += staged_pages;
    arena_[s] = {.tables = nullptr, .sparse_decode = c.decode};
    chunk_of_seq_[s] = static_cast<int>(chunks_.size());
    chunks_.push_back(std::move(c));
  }
  for (const Chunk& c : chunks_) arena_[c.seq].tables = &c.tables;

  // Decode groups: consecutive decode chunks sharing a pool and the policy's settings.
  for (int i = 0; i < static_cast<int>(decode_chunks_.size()); ++i) {
    const Chunk& c = chunks_[decode_chunks_[i]];
    TieredStatePool* pool = &c.state->pool();
    if (!groups_.empty()) {
      Group& g = groups_.back();
      const Chunk& prev = chunks_[decode_chunks_[i - 1]];
      if (g.pool == pool && g.freekv == c.freekv && g.tau == c.tau && prev.digest == c.digest) {
        ++g.count;
        continue;
      }
    }
    groups_.push_back({.first = i, .count = 1, .pool = pool, .freekv = c.freekv, .tau = c.tau});
  }
  const int D = static_cast<int>(decode_chunks_.size());
  const int F = static_cast<int>(prefill_chunks_.size());
  state_rows_ = Take(D);
  for (int i = 0; i < D; ++i)
    host_[parity_][state_rows_ + i] = chunks_[decode_chunks_[i]].state->row();

  // Each side's arrays per layer.
  for (int l = 0; l < L; ++l) {
    for (const bool decode : {true, false}) {
      const std::vector<int>& side = decode ? decode_chunks_ : prefill_chunks_;
      const int n = decode ? D : F;
      if (n == 0) continue;
      SideLayer& sl = (decode ? decode_layers_ : prefill_layers_)[l];
      int list_capacity = 0;
      for (int i = 0; i < n; ++i) {
        const ChunkLayer& cl = planned[side[i]][l];
        sl.host_stride = std::max(sl.host_stride, static_cast<int>(cl.host_table->size()));
        sl.target_stride = std::max(sl.target_stride, static_cast<int>(cl.targets.size()));
        list_capacity = std::max(list_capacity, static_cast<int>(cl.list_pages.size()));
      }
      sl.target_stride = std::max(sl.target_stride, 1);
      // Host tables grow a page at a time; a power of two keeps the layout for many steps.
      sl.host_stride = static_cast<int>(std::bit_ceil(static_cast<unsigned>(sl.host_stride)));
      sl.lens = Take(n);
      sl.host_lens = Take(n);
      sl.host_table = Take(size_t(n) * sl.host_stride);
      sl.targets = Take(size_t(n) * sl.target_stride);
      if (list_capacity > 0) sl.host_list = TakeList(n * H, list_capacity, false);
      std::vector<int32_t>& ints = host_[parity_];
      for (int i = 0; i < n; ++i) {
        const ChunkLayer& cl = planned[side[i]][l];
        ints[sl.lens + i] = cl.after;
        ints[sl.host_lens + i] = cl.before;
        std::copy(cl.host_table->begin(), cl.host_table->end(),
                  ints.begin() + sl.host_table + size_t(i) * sl.host_stride);
        const size_t targets = sl.targets + size_t(i) * sl.target_stride;
        std::copy(cl.targets.begin(), cl.targets.end(), ints.begin() + targets);
        if (!decode) {
          for (size_t j = 0; j < cl.targets.size(); ++j) staging_refs_.push_back({targets + j, l});
        }
        // Every head of a chunk gets the same host-chosen placements.
        const int k = static_cast<int>(cl.list_pages.size());
        const ListAt& list = sl.host_list;
        for (int h = 0; h < H && k > 0; ++h) {
          const size_t unit = size_t(i) * H + h;
          ints[list.at + unit] = k;
          const size_t pages = list.at + list.units + unit * list.capacity;
          std::copy(cl.list_pages.begin(), cl.list_pages.end(), ints.begin() + pages);
          std::copy(cl.list_slots.begin(), cl.list_slots.end(),
                    ints.begin() + pages + size_t(list.units) * list.capacity);
        }
      }
      if (decode) {
        sl.extend = TakeList(n * H, max_slots_, true);
        sl.select = TakeList(n * H, max_retrieved, true);
        // Host-written, so that the quest chunks' counts read zero in the one speculative recall.
        sl.spec = TakeList(n * H, max_retrieved, false);
        sl.flags = TakeDevice(CeilDiv(n * H, 4));
      }
    }
    for (auto& [key, pages] : digests[l]) {
      if (pages.empty()) continue;
      const auto& [decode, pool, kind] = key;
      DigestLaunch d{.pool = pool, .kind = kind, .n = static_cast<int>(pages.size())};
      d.src = Take(pages.size());
      d.rows = Take(pages.size());
      for (size_t i = 0; i < pages.size(); ++i) {
        host_[parity_][d.src + i] = pages[i].src;
        host_[parity_][d.rows + i] = pages[i].row;
        if (pages[i].staged) staging_refs_.push_back({d.src + i, l});
      }
      (decode ? decode_layers_ : prefill_layers_)[l].digests.push_back(d);
    }
  }
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
  lists_at_ = TakeDevice(size_t(D) * H * (1 + 2 * size_t(std::max(1, max_slots_))));
  // Device-written ints follow the host ones.
  const size_t host_ints = host_[parity_].size();
  for (SideLayer& sl : decode_layers_) {
    if (D == 0) break;
    sl.extend.at += host_ints;
    sl.select.at += host_ints;
    sl.flags += host_ints;
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
