#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/host_device.h"
#include "kernels/paged_kv_cache.h"

namespace kvserve::kernels {

// FreeKV and Quest decode on the device (research/freekv.md §4-§6): the full KV in a pinned host
// tier, per-page key digests, page selection and residency per (sequence, KV head), recall by a
// gather kernel, correction by query drift, and attention over each head's resident pages. Every
// decision stays on the device: the host never reads a page list. Each kernel has a twin in
// kernels/cpu_reference; where the CPU policy (engine/kv) does the same math, it calls the twin.
//
// A unit is one (sequence, KV head): unit u = seq * n_kv_heads + kv_head.
//
// What persists across steps (residency maps, digests, the previous query, counters) lives in rows
// of arrays that hold many sequences (the CUDA backend's TieredStatePool): a launch's sequence
// `seq` uses row state_rows[seq], so one launch serves every sequence of a step whatever rows they
// hold; without state_rows, row = seq.
KVSERVE_HOST_DEVICE inline int StateRow(const int32_t* state_rows, int seq) {
  return state_rows != nullptr ? state_rows[seq] : seq;
}

// How a page's keys are summarised (§4.2).
enum class PageDigestKind {
  kMinMax,     // per-channel max/min of the keys: Quest, and the FreeKV paper
  kCenterMad,  // center ± mean |k - center| per channel: ArkVale's tighter box, FreeKV's system
               // code
};

// How the query heads of a GQA group agree on one page set (§4.3).
enum class PageScoreAggregation {
  kMeanSoftmax,  // "MeanS": softmax over the candidates per query head, then the group mean
  kMean,         // plain mean of the raw bounds (FreeKV system code)
  kMax,          // group max of the raw bounds (Quest)
};

// How a (sequence, layer)'s device budget of `slots` pages splits (§4.1): slots [0, sink) hold the
// first pages, [sink, sink + retrieved) the selected ones, the last `window` slots the newest
// pages (the last one partial), rotating FIFO as pages fill. engine/kv's BudgetLayout.
struct TieredLayout {
  int slots = 0;
  int sink = 0;
  int window = 1;
  KVSERVE_HOST_DEVICE int retrieved() const { return slots - sink - window; }
};

// One layer's host tier as kernels see it: pinned host pages in PagedKvLayout ([page][kv_head]
// [K|V][page_size][head_dim] bf16, so one (page, head) is one contiguous chunk), through the
// pointer the device maps them at (cudaHostGetDevicePointer).
struct HostTierView {
  Bf16* pages = nullptr;  // device-mapped pointer of the pinned pages
  PagedKvLayout layout;
  // [num_seqs][page_table_stride]: host page of each logical page of each sequence.
  const int32_t* page_table = nullptr;
  int page_table_stride = 0;
};

// Rows [first_row, first_row + rows) of every KV head's keys and values of device arena page
// `src_page`, to the same rows of host tier page `dst_page`.
struct PageRowCopy {
  int32_t src_page = 0;
  int32_t dst_page = 0;
  int32_t first_row = 0;
  int32_t rows = 0;
};

// A step's new KV rows (the prompt's pages after prefill, a decode token's row) from the device
// arena to the host tier. The copy list is the step plan's: the host knows both page tables.
struct HostTierWriteParams {
  const Bf16* src_pages = nullptr;  // the device arena (PagedKvCache::pages)
  Bf16* dst_pages = nullptr;        // the host tier's device-mapped pages
  PagedKvLayout layout;
  const PageRowCopy* copies = nullptr;  // [num_copies], device memory
  int num_copies = 0;
};

// Per-page digests: for each (page, KV head) hi[head_dim] then lo[head_dim], fp32, at digest row
// `state row * row_pages + logical page` of `data` ([rows][n_kv_heads][2][head_dim]).
struct PageDigestTable {
  float* data = nullptr;
  int row_pages = 0;  // digest rows per state row (the most pages a sequence reaches)
  int n_kv_heads = 0;
  int head_dim = 0;

  KVSERVE_HOST_DEVICE size_t HiOffset(int32_t row, int kv_head) const {
    return (static_cast<size_t>(row) * n_kv_heads + kv_head) * 2 * head_dim;
  }
};

// Digests of whole (full) pages of the device arena: page src_pages[i] into digest row
// digest_rows[i].
struct PageDigestBuildParams {
  const Bf16* pages = nullptr;  // the device arena
  PagedKvLayout layout;
  // [num_pages] arena pages; a negative entry builds nothing (a decode sequence whose page did
  // not fill, in a launch that lists every sequence so that steps repeat for CUDA graphs)
  const int32_t* src_pages = nullptr;
  const int32_t* digest_rows = nullptr;  // [num_pages]
  int num_pages = 0;
  PageDigestKind kind = PageDigestKind::kMinMax;
  float* digests = nullptr;  // PageDigestTable::data
};

// Each unit's budget: which logical page each slot holds (slot_page, -1 empty) and where each
// logical page is resident (page_slot, -1 host only), how many pages the maps know and the FIFO
// cursor over the window slots. engine/kv's ResidencyMap, as arrays on the device, indexed by
// state unit (state row * n_kv_heads + kv_head).
struct ResidencyState {
  int32_t* slot_page = nullptr;  // [state units][slots]
  int32_t* page_slot = nullptr;  // [state units][max_pages]
  int max_pages = 0;
  int32_t* n_pages = nullptr;           // [state units]
  int32_t* next_window = nullptr;       // [state units]
  const int32_t* state_rows = nullptr;  // [num_seqs] (null: row = seq)

  KVSERVE_HOST_DEVICE size_t Unit(int seq, int kv_head, int n_kv_heads) const {
    return static_cast<size_t>(StateRow(state_rows, seq)) * n_kv_heads + kv_head;
  }
};

// Placements (logical page -> budget slot) per unit: counts[u] entries at u * capacity.
struct PlacementList {
  int32_t* counts = nullptr;  // [units]
  int32_t* pages = nullptr;   // [units][capacity]
  int32_t* slots = nullptr;   // [units][capacity]
  int capacity = 0;
};

// Brings each sparse unit's maps to its sequence's page count (ResidencyMap::Extend): the first
// `sink` pages take the sink slots, newer pages the window slots FIFO, the page leaving the window
// becomes host-only. A sequence whose pages fit the budget (n_pages <= slots) is dense: nothing
// changes and its lists are empty. The placements whose slot now holds another page are listed
// (capacity >= slots), for the recall kernel to fill from the host tier.
struct ExtendResidencyParams {
  const int32_t* kv_lens = nullptr;  // [num_seqs] tokens, this step's included
  int num_seqs = 0;
  int n_kv_heads = 0;
  int page_size = 0;
  TieredLayout layout;
  ResidencyState residency;
  PlacementList placements;
};

// Page selection (§4.3-§4.4) of every sparse unit the mask selects: Quest bounds of the group's
// query heads against the digests of the candidates [sink, n_pages - window), aggregated over the
// group, the top `retrieved` pages (ties to the earlier page), then the residency update
// (ResidencyMap::Select: resident selected pages stay, the others take the victims' slots, in page
// and slot order) and the list of placements to recall (capacity >= retrieved).
struct SelectPagesParams {
  const Bf16* q = nullptr;  // post-RoPE query, [num_seqs][q_row_stride], head h at h * head_dim
  int q_row_stride = 0;
  // With this, sequence seq's query is row q_rows[seq] of q (FreeKV's speculative pass reads each
  // sequence's kept q_t at its state row).
  const int32_t* q_rows = nullptr;
  int num_seqs = 0;
  int n_heads = 0;
  PageDigestTable digests;           // its n_kv_heads and head_dim are the model's
  const int32_t* kv_lens = nullptr;  // [num_seqs]
  int page_size = 0;
  TieredLayout layout;
  ResidencyState residency;
  // [units]: which units select (null: all). With `invert`, the units whose entry is zero do:
  // FreeKV's speculative pass after attention serves the heads its correction did not.
  const uint8_t* mask = nullptr;
  bool invert = false;
  PageScoreAggregation aggregation = PageScoreAggregation::kMeanSoftmax;
  PlacementList recalls;  // residency.max_pages sizes the block's shared memory
};

// Gathers placed pages from the host tier into their budget slots: for each listed (unit, page,
// slot), the unit's KV head's keys and values of host page `host.page_table[seq][page]` into the
// same head's slice of device page budget_pages[seq * slots + slot]. Rows present in the host tier
// only: min(page_size, host_lens[seq] - page * page_size). One launch for every unit of a layer.
struct RecallParams {
  HostTierView host;
  Bf16* device_pages = nullptr;           // the device arena, same PagedKvLayout
  const int32_t* budget_pages = nullptr;  // [num_seqs][slots] arena page of each budget slot
  int slots = 0;
  const int32_t* host_lens = nullptr;  // [num_seqs] tokens written to the host tier
  int num_seqs = 0;
  PlacementList list;  // counts read on the device; capacity sizes the grid
  int max_blocks = 0;  // grid limit (0: one block per list entry); FreeKV needs ~8-16 SMs
};

// FreeKV's correction check (§3): per sparse unit, the mean over its query heads of
// cos(q_t, q_{t-1}); below tau (or tau >= 1) the unit is flagged to re-select with q_t now. A
// sequence without a previous query (its first sparse step) flags every unit and is not counted
// as checked. q_t is then kept as the next step's q_{t-1}. Dense sequences are left alone.
struct QueryDriftParams {
  const Bf16* q = nullptr;  // [num_seqs][q_row_stride]
  int q_row_stride = 0;
  Bf16* last_q = nullptr;               // [state rows][n_heads * head_dim], updated
  uint8_t* has_last_q = nullptr;        // [state rows], updated
  const int32_t* state_rows = nullptr;  // [num_seqs] (null: row = seq)
  int num_seqs = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  const int32_t* kv_lens = nullptr;  // [num_seqs]
  int page_size = 0;
  int slots = 0;  // a sequence with more pages than this is sparse
  float tau = 0.0f;
  uint8_t* flags = nullptr;  // [units] out: 1 = re-select now
  // Optional counters, each [state rows]: units checked, units flagged by drift; += 1 if the
  // sequence was checked, and += 1 if any of its units drifted (the step correction rate's
  // denominator and numerator, per layer step as on the CPU).
  int32_t* checks = nullptr;
  int32_t* corrections = nullptr;
  int32_t* checked_steps = nullptr;
  int32_t* corrected_steps = nullptr;
};

// Each unit's attention page list (compact, slot order): the arena page of every resident slot
// with its valid rows; a dense sequence (n_pages <= slots) lists all its pages from its own page
// table instead. Entries of unit u at u * capacity (capacity >= slots), counts[u] of them.
struct PageListView {
  const int32_t* counts = nullptr;  // [units]
  const int32_t* pages = nullptr;   // [units][capacity] arena pages
  const int32_t* rows = nullptr;    // [units][capacity] valid rows of each
  int capacity = 0;
};

struct EmitPageListsParams {
  const int32_t* kv_lens = nullptr;  // [num_seqs]
  int num_seqs = 0;
  int n_kv_heads = 0;
  int page_size = 0;
  TieredLayout layout;
  const int32_t* slot_page = nullptr;     // ResidencyState::slot_page
  const int32_t* state_rows = nullptr;    // [num_seqs] rows of slot_page (null: row = seq)
  const int32_t* budget_pages = nullptr;  // [num_seqs][budget_stride]
  int budget_stride = 0;                  // 0: layout.slots
  const int32_t* dense_table = nullptr;   // [num_seqs][dense_stride] pages of dense sequences
  int dense_stride = 0;
  int32_t* counts = nullptr;  // PageListView, written
  int32_t* pages = nullptr;
  int32_t* rows = nullptr;
  int capacity = 0;
};

// Decode attention of one query row per sequence over each unit's page list (sink + selected +
// recent pages), split along the list like the dense decode kernel.
struct SparseDecodeAttentionParams {
  const Bf16* q = nullptr;  // [num_seqs][q_row_stride]
  int q_row_stride = 0;
  Bf16* out = nullptr;  // [num_seqs][out_row_stride]
  int out_row_stride = 0;
  int num_seqs = 0;
  int n_heads = 0;
  const Bf16* pages = nullptr;  // the device arena
  PagedKvLayout layout;
  PageListView lists;
  int max_list_pages = 0;  // the longest list, known on the host (<= capacity): sizes the split
  float scale = 0.0f;
};

}  // namespace kvserve::kernels
