#pragma once

#include <cuda_runtime_api.h>

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/kv/tiered_kv_policy.h"
#include "engine/model/model_config.h"
#include "engine/runtime/backend.h"
#include "engine/runtime/cuda/pinned_host_tier.h"
#include "engine/runtime/cuda/step_plan.h"
#include "engine/runtime/cuda/tiered_sequence_state.h"
#include "engine/runtime/cuda/tiered_state_pool.h"
#include "kernels/bf16.h"
#include "kernels/paged_kv_cache.h"

namespace kvserve::cuda {

// Quest and FreeKV on the CUDA backend (research/freekv.md §2-§6; issue 13): a tiered sequence's
// cache lives in the pinned host tier (its page ids are the host pool's), the device keeps its
// budget of `slots` arena pages per layer (TieredKvPolicy's BudgetCache, from the device pool),
// and its maps, digests and last query in a row of the TieredStatePool of its budget layout.
//
//  - A prefill chunk runs over staging pages in the step scratch (its earlier pages gathered from
//    the host tier first); after each layer its new rows go to the host tier on the copy stream
//    and its full pages get digests.
//  - A decode token appends to the budget slot its page occupies (page i in slot i while the
//    context fits the budget; else the sink or the window slot Extend gives it), then the row
//    goes to the host tier on the copy stream and a filled page gets its digest.
//  - Attention: residency extended, pages selected (quest: with this query; freekv: the heads
//    the query-drift mask flags), recalled by the gather kernel, page lists emitted, page-sparse
//    split-K decode; then FreeKV's speculative selection and recall for the next step on the
//    recall stream, after an event behind the attention, with an event the next step's layer
//    waits on. No host synchronisation inside the step; the host never reads a page list.
//
// Launches are per layer, not per sequence: each recall (window, dense fill, staging, selected,
// speculative) is one gather over every sequence of the step; extension, drift, selection and
// page lists are one launch per group of consecutive decode sequences sharing a pool and policy
// settings (one group when every request takes the server's defaults). Counts come back after
// the step (StepOutput::kv_counts).
//
// CUDA graphs: a decode step's launches repeat while its key does (AppendGraphKey: the lists'
// layout, the pools' and host tier's addresses; a digest build lists every sequence, host tables
// are a power of two wide). Step parity gives two graphs per shape. A graph must join what it
// forked, so a captured step ends by waiting for its copy and recall streams: the last layers'
// speculative recall overlaps the LM head, not the next step's host work as in an eager step.
class TieredDecode {
 public:
  TieredDecode() = default;
  ~TieredDecode();
  TieredDecode(const TieredDecode&) = delete;
  TieredDecode& operator=(const TieredDecode&) = delete;

  // `wait_for_recall` false drops the compute stream's wait on the speculative recall: a test
  // knob that must make the emulator's deferred schedule fail.
  absl::Status Init(const ModelConfig& config, int num_sms, bool wait_for_recall);
  // A benchmark's oracle: selection runs, but the selected pages are taken as resident and nothing
  // is gathered for them (attention then reads whatever the slots hold). Window pages still come.
  void set_recall_oracle(bool on) { recall_oracle_ = on; }
  PinnedHostTier& host_tier() { return host_tier_; }
  // Rows of every state pool held by a sequence.
  int state_rows_in_use() const;

  // A chunk of a tiered policy: its budget taken and its device state attached (once).
  absl::Status Admit(const SequenceChunk& chunk);

  // The step's tiered chunks, before their caches' lengths advance. Staging pages are numbered
  // from 0 until SetStagingBase.
  absl::Status Plan(std::span<const SequenceChunk> batch, const kernels::PagedKvLayout& kv);
  bool any() const { return !chunks_.empty(); }
  std::span<const ArenaPages> arena() const { return arena_; }
  int staging_pages() const { return 2 * staging_per_buffer_; }
  void SetStagingBase(int32_t base);
  int32_t max_budget_page() const { return max_budget_page_; }

  // Uploads the step's lists on `compute` (after Plan and SetStagingBase).
  absl::Status Upload(cudaStream_t compute);

  // Layer hooks, on the compute stream, in this order: before the KV append, after it, after a
  // prefill layer's attention (and compression), the sparse decode runs, after the attention.
  absl::Status BeforeAppend(int layer, kernels::Bf16* arena, cudaStream_t compute);
  absl::Status AfterAppend(int layer, kernels::Bf16* arena, cudaStream_t compute);
  absl::Status AfterPrefillLayer(int layer, kernels::Bf16* arena, cudaStream_t compute);
  absl::Status Attend(int layer, const AttentionRun& run, const kernels::Bf16* q, int q_stride,
                      kernels::Bf16* out, int out_stride, float scale, kernels::Bf16* arena,
                      float* workspace, cudaStream_t compute);
  absl::Status AfterAttention(int layer, kernels::Bf16* arena, cudaStream_t compute);

  // CUDA graphs (CudaBackend::RunLayersAsGraph). Whether the step's launches repeat for as long
  // as its key does: decode chunks only, no dense budget fill from the host, the recall wait on.
  bool GraphReady() const;
  // What the step's launches bake in besides the contents of its uploaded ints: offsets, sizes,
  // counts, modes and device addresses (after Upload).
  void AppendGraphKey(std::vector<int64_t>* key) const;
  // Before a graph runs: the compute stream waits for the side streams' queued recalls and
  // staging copies (a capture cannot wait on work outside it); none is pending after.
  absl::Status WaitForSideStreams(cudaStream_t compute);
  // At the end of a capture: the compute stream waits for what the step gave the copy and recall
  // streams (a graph ends only when its forks have joined), so nothing the graph queued there is
  // left for a later step to wait for.
  absl::Status JoinSideStreams(cudaStream_t compute);

  // Decode workspace a sparse run of `num_seqs` sequences needs.
  size_t WorkspaceBytes(int num_seqs) const;

  // After the compute stream drained: host tier writes finished, counts into out->kv_counts
  // (`index`: each step chunk's index in the caller's batch), the step's host mirrors committed.
  absl::Status Finish(std::span<const int> index, StepOutput* out);

  // Test view: the pages KV head `kv_head` of `layer` holds in its budget, in slot order (reads the
  // device after draining it); empty while the sequence is dense.
  static std::vector<int32_t> ResidentPages(const KvPolicy& policy, int layer, int kv_head,
                                            int length);

 private:
  // A PlacementList in the step region over `units` units (a side's sequences x KV heads).
  struct ListAt {
    size_t at = 0;
    int capacity = 0;
    int units = 0;
  };
  // Digests one launch builds: full pages of one pool's sequences, arena page -> digest row.
  struct DigestLaunch {
    TieredStatePool* pool = nullptr;
    kernels::PageDigestKind kind = kernels::PageDigestKind::kMinMax;
    size_t src = 0, rows = 0;
    int n = 0;
  };
  // One layer's ints for one side of the step (its decode chunks, or its prefill chunks), every
  // array indexed by the chunk's index on that side.
  struct SideLayer {
    size_t lens = 0;       // [n] tokens after the step
    size_t host_lens = 0;  // [n] tokens the host tier held before it
    size_t host_table = 0;
    int host_stride = 0;  // [n][host_stride] host page of each logical page
    size_t targets = 0;
    int target_stride = 0;  // [n][target_stride] decode: arena page of each budget slot;
                            // prefill: staging page of each earlier page
    ListAt host_list;       // host-chosen placements (dense budget fill, staging); capacity 0: none
    ListAt extend, select, spec;  // decode: device-written, but spec (zeroed for quest chunks)
    size_t flags = 0;             // decode: [n][n_kv_heads] drift flags, device-written
    bool any_sparse = false;
    std::vector<DigestLaunch> digests;
  };
  struct LayerPlan {
    bool sparse = false;  // decode with more pages than slots at this layer
    int dense_resident_after = 0;
  };
  struct Chunk {
    int seq = 0;    // index in the step's batch
    int index = 0;  // among the step's decode chunks, or its prefill chunks
    TieredKvPolicy* policy = nullptr;
    TieredSequenceState* state = nullptr;
    bool decode = false;  // one token over a cache: budget path; else a staged prefill
    bool freekv = false;
    kernels::PageDigestKind digest = kernels::PageDigestKind::kMinMax;  // the policy's
    float tau = 0.0f;
    std::vector<std::vector<int32_t>> tables;  // [layer] arena pages for StepPlan
    std::vector<LayerPlan> layers;
  };
  // Consecutive decode chunks one launch serves: one pool, one mode, tau and digest.
  struct Group {
    int first = 0, count = 0;  // decode indices
    TieredStatePool* pool = nullptr;
    bool freekv = false;
    float tau = 0.0f;
  };

  size_t Take(size_t n);  // host-written ints
  size_t TakeDevice(size_t n);
  ListAt TakeList(int units, int capacity, bool device);
  kernels::PlacementList List(const ListAt& l, int first = 0) const;
  int32_t* Ints(size_t at) const { return region_[parity_] + at; }
  kernels::RecallParams Recall(const SideLayer& side, const ListAt& list, int first, int n,
                               kernels::Bf16* arena) const;
  kernels::SelectPagesParams Select(const Group& g, int layer, int first, int n,
                                    const kernels::Bf16* q, int q_stride, bool speculative) const;
  absl::Status BuildDigests(const std::vector<DigestLaunch>& launches, int layer,
                            kernels::Bf16* arena, cudaStream_t stream);
  absl::Status EnsureRegion(size_t ints);
  // Whether the step has freekv sequences: their speculative recall uses the recall stream.
  bool AnyFreeKv() const;
  // The pool of sequences with this budget layout (made on first use).
  absl::StatusOr<std::shared_ptr<TieredStatePool>> PoolFor(const kernels::TieredLayout& layout,
                                                           int page_size);

  ModelConfig config_;
  int num_sms_ = 1;
  bool wait_for_recall_ = true;
  bool recall_oracle_ = false;
  kernels::PagedKvLayout kv_{};
  PinnedHostTier host_tier_;
  std::vector<std::shared_ptr<TieredStatePool>> pools_;
  cudaStream_t copy_stream_ = nullptr, recall_stream_ = nullptr;
  std::vector<cudaEvent_t> appended_, attention_done_, recall_done_;
  std::vector<char> recall_recorded_;
  std::array<cudaEvent_t, 2> staging_free_{};
  std::array<bool, 2> staging_recorded_{};
  cudaEvent_t copies_joined_ = nullptr, recalls_joined_ = nullptr;

  // The step's plan: host ints, then what the kernels write; double-buffered by step parity so
  // that a speculative recall still queued from the previous step reads its own lists.
  std::vector<Chunk> chunks_;                        // batch order
  std::vector<int> decode_chunks_, prefill_chunks_;  // chunk of each index on its side
  std::vector<Group> groups_;
  std::vector<SideLayer> decode_layers_, prefill_layers_;  // [layer]
  size_t state_rows_ = 0;                                  // [decode chunks] their pool rows
  std::vector<ArenaPages> arena_;
  std::vector<int> chunk_of_seq_;
  std::vector<std::vector<kernels::PageRowCopy>> host_writes_;  // [layer]
  std::vector<size_t> host_writes_at_;                          // [layer]
  std::vector<std::vector<size_t>> staged_writes_;              // [layer] copies from staging
  std::vector<std::pair<size_t, int>> staging_refs_;  // (host int, layer) holding a staging id
  std::array<std::vector<int32_t>, 2> host_{};
  std::array<int32_t*, 2> region_{};
  std::array<size_t, 2> region_ints_{};
  size_t device_ints_ = 0;
  size_t lists_at_ = 0;  // attention page lists, [decode chunks] like a side's arrays
  int parity_ = 0;
  int staging_per_buffer_ = 0;
  int32_t max_budget_page_ = -1;
  int max_slots_ = 0;
  // The previous step's speculative recall counts: where (per sparse layer), and whose.
  struct Speculated {
    const TieredSequenceState* state = nullptr;
    std::vector<size_t> counts_at;
  };
  std::vector<Speculated> speculated_;
};

}  // namespace kvserve::cuda
