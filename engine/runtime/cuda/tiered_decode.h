#pragma once

#include <cuda_runtime_api.h>

#include <array>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "engine/kv/tiered_kv_policy.h"
#include "engine/model/model_config.h"
#include "engine/runtime/backend.h"
#include "engine/runtime/cuda/pinned_host_tier.h"
#include "engine/runtime/cuda/step_plan.h"
#include "engine/runtime/cuda/tiered_sequence_state.h"
#include "kernels/bf16.h"
#include "kernels/paged_kv_cache.h"

namespace kvserve::cuda {

// Quest and FreeKV on the CUDA backend (research/freekv.md §2-§6; issue 13): a tiered sequence's
// cache lives in the pinned host tier (its page ids are the host pool's), the device keeps its
// budget of `slots` arena pages per layer (TieredKvPolicy's BudgetCache, from the device pool).
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
// Per-sequence device state is launched one sequence at a time (num_seqs 1); attention is one
// launch per run. Counts come back after the step (StepOutput::kv_counts).
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
  int max_slots() const { return max_slots_; }

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
  struct ListAt {  // a PlacementList in the step region
    size_t at = 0;
    int capacity = 0;
  };
  struct LayerPlan {
    size_t host_table = 0, lens = 0, target = 0, digest_src = 0, digest_rows = 0, flags = 0;
    int host_stride = 0, n_digests = 0, n_targets = 0;
    bool sparse = false;  // decode with more pages than slots at this layer
    int dense_resident_after = 0;
    ListAt host_list, extend, select, spec;
  };
  struct Chunk {
    int seq = 0;  // index in the step's batch
    TieredKvPolicy* policy = nullptr;
    TieredSequenceState* state = nullptr;
    bool decode = false;  // one token over a cache: budget path; else a staged prefill
    bool freekv = false;
    kernels::PageDigestKind digest = kernels::PageDigestKind::kMinMax;  // the policy's
    float tau = 0.0f;
    std::vector<std::vector<int32_t>> tables;  // [layer] arena pages for StepPlan
    std::vector<LayerPlan> layers;
  };

  size_t Take(size_t n);  // host-written ints
  size_t TakeDevice(size_t n);
  kernels::PlacementList List(const ListAt& l) const;
  int32_t* Ints(size_t at) const { return region_[parity_] + at; }
  kernels::RecallParams Recall(const Chunk& c, int layer, const ListAt& list,
                               const int32_t* targets, int slots, kernels::Bf16* arena) const;
  kernels::SelectPagesParams Select(const Chunk& c, int layer, const kernels::Bf16* q, int q_stride,
                                    const ListAt& list, bool speculative) const;
  // The digests of the pages `c`'s plan for `layer` filled (decode) or staged (prompt).
  absl::Status BuildDigests(const Chunk& c, int layer, kernels::Bf16* arena, cudaStream_t compute);
  absl::Status EnsureRegion(size_t ints);
  absl::Status EnsureIdentity(int pages);

  ModelConfig config_;
  int num_sms_ = 1;
  bool wait_for_recall_ = true;
  bool recall_oracle_ = false;
  kernels::PagedKvLayout kv_{};
  PinnedHostTier host_tier_;
  cudaStream_t copy_stream_ = nullptr, recall_stream_ = nullptr;
  std::vector<cudaEvent_t> appended_, attention_done_, recall_done_;
  std::vector<char> recall_recorded_;
  std::array<cudaEvent_t, 2> staging_free_{};
  std::array<bool, 2> staging_recorded_{};
  int32_t* identity_ = nullptr;  // [identity_pages_]: digest row of each logical page
  int identity_pages_ = 0;

  // The step's plan: host ints, then what the kernels write; double-buffered by step parity so
  // that a speculative recall still queued from the previous step reads its own lists.
  std::vector<Chunk> chunks_;
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
  size_t lists_at_ = 0;  // attention page lists
  int parity_ = 0;
  int staging_per_buffer_ = 0;
  int32_t max_budget_page_ = -1;
  int max_slots_ = 0;
  // The previous step's speculative recall counts: where, and whose.
  struct Speculated {
    const TieredSequenceState* state = nullptr;
    size_t at = 0;  // [layers][counts at ListAt::at]
    std::vector<size_t> layer_counts;
  };
  std::vector<Speculated> speculated_;
};

}  // namespace kvserve::cuda
