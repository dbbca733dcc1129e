#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "engine/base/mutex.h"
#include "engine/kv/chunk_kind.h"
#include "engine/kv/kv_page_store.h"
#include "engine/kv/kv_policy.h"
#include "engine/kv/page_pool.h"
#include "engine/kv/sequence_kv_cache.h"
#include "engine/model/model_config.h"

namespace kvserve {

// One sequence's share of a forward step: a prefill chunk or a single decode token.
struct SequenceChunk {
  std::span<const int32_t> tokens;     // tokens to run this step
  std::span<const int32_t> positions;  // their logical positions (RoPE), same length as tokens
  SequenceKvCache* kv = nullptr;       // the chunk's K/V are appended here; attention reads it
  bool compute_logits = true;          // emit logits for the chunk's last token
  KvPolicy* policy = nullptr;          // the sequence's KV policy; nullptr = full
  bool whole_prompt = false;           // the chunk is the entire prompt: the policy may compress
  // The policy's plan for a whole-prompt chunk (null or empty: keep every row); the backend runs
  // its selection and applies it to `kv`.
  const PromptCompressionPlan* compression = nullptr;
  // The step plan's sparse decode pages for a decode chunk of a tiered policy, per layer and
  // KV head in CSR form: the policy fills each layer's lists as the step reaches it (its
  // selection needs the layer's query) and attention reads them. Null: the backend keeps its own.
  DecodePageLists* decode_pages = nullptr;
  // A decode chunk (one token) runs the policy's decode hooks; a prompt chunk never does, even a
  // prompt's one-token last chunk: it attends over the whole cache, as it would alone.
  ChunkKind kind = ChunkKind::kPrompt;
};

// What a prompt's compression keeps of one layer of its cache: each KV head's rows, in order (every
// head the same count). The backend decides it inside the step; the cache's owner applies it
// after the step (the KvCacheManager in the engine), so the backend never edits page tables.
struct KvRetention {
  int layer = 0;
  std::vector<std::vector<int32_t>> rows;  // [kv_head][kept row]
  // With `rows` empty: the backend already compacted the kept rows to the front of its own arena
  // (CUDA), so the cache's owner keeps the first `length` rows of the layer's table.
  int length = 0;
};

// What a step produced. A chunk that failed (bad input, a plan its cache cannot take) ends only
// its own sequence: its status says why, it has no logits row, and the other chunks went on.
struct StepOutput {
  std::vector<float> logits;               // [rows][vocab]: chunks with logits that succeeded
  std::vector<int> logits_row;             // per chunk: its row in `logits`, or -1
  std::vector<absl::Status> chunk_status;  // per chunk
  // Per chunk whose plan records its scores, one entry per layer (else empty).
  std::vector<std::vector<PromptLayerScores>> prompt_layers;
  // Per chunk, the layers its prompt compression shortens (else empty): to apply to its cache.
  std::vector<std::vector<KvRetention>> retained;
  // Per chunk, what a backend that runs a tiered policy on its device counted (else empty).
  std::vector<DeviceKvCounts> kv_counts;

  // Sizes the per-chunk vectors for `chunks` chunks, every one OK and without logits.
  void Reset(size_t chunks);
};

// The chunks of a step that `admit` accepts, copied in order, with each one's index in the step;
// the others' statuses go to `out` (sized for the step): a failed chunk ends alone.
struct AdmittedChunks {
  std::vector<SequenceChunk> chunks;
  std::vector<int> index;

  void Admit(std::span<const SequenceChunk> batch,
             const std::function<absl::Status(const SequenceChunk&)>& admit, StepOutput* out);
};

// Applies each OK chunk's `out->retained` to its cache: for callers that own the caches
// themselves (tests, tools); the engine's KvCacheManager does it for the scheduler.
void ApplyRetention(std::span<const SequenceChunk> batch, const StepOutput& out);

class Backend;
// What the KvCacheManager does before a step, for callers that own the caches themselves: gives
// each chunk's cache the pages its tokens need, and a tiered policy its device budget when
// `backend` runs it then (ProvideDeviceBudget). ResourceExhausted when a pool is short.
absl::Status GrowForStep(const Backend& backend, std::span<const SequenceChunk> batch);

// FailedPrecondition unless the chunk's cache already has pages for its tokens: backends write
// rows into pages, they never take them.
absl::Status CheckChunkPages(const SequenceChunk& chunk);

// Hands each OK chunk's out.kv_counts to its policy (RecordDeviceCounts).
void ApplyDeviceKvCounts(std::span<const SequenceChunk> batch, const StepOutput& out);

// Runs the model's layers on some device. The scheduler drives it with ragged batches.
class Backend : public KvPageStoreProvider {
 public:
  ~Backend() override = default;
  virtual std::string_view name() const = 0;
  virtual const ModelConfig& config() const = 0;

  // Which KV policies (and options) this backend executes: OK, or FailedPrecondition naming the
  // policy and the backend. Asked at server startup for the default policy and at every submit.
  virtual absl::Status Supports(const KvPolicyOptions& options) const;

  // Runs every chunk of `batch` through the model, appending its K/V to its cache (whose pages the
  // caller grew before, else the backend takes them), and returns the prompt compression each
  // chunk's plan decided in out->retained, unapplied. A chunk-level failure is in
  // out->chunk_status; a non-OK return means the whole step failed (e.g. a device error).
  virtual absl::Status Execute(std::span<const SequenceChunk> batch, StepOutput* out) = 0;

  // Execute for callers that treat any failure as the step's, with ApplyRetention: rows of `logits`
  // ([rows][vocab], resized) hold the last token's logits of each chunk with compute_logits, in
  // batch order.
  absl::Status Forward(std::span<const SequenceChunk> batch, std::vector<float>* logits);

  // How K and V elements are stored (--kv-dtype): the CPU's choice of fp16 (default), bf16 or
  // fp32; CUDA's bf16. SetKvDtype is for before the first KV cache is made: FailedPrecondition,
  // naming the backend, for a type it does not store.
  virtual KvDtype kv_dtype() const { return KvDtype::kF32; }
  virtual absl::Status SetKvDtype(KvDtype dtype);

  // Bytes of one stored K or V element: what --kv-cache-memory buys pages by.
  virtual size_t kv_element_bytes() const { return KvDtypeBytes(kv_dtype()); }

  // KV pages of `page_size` tokens the backend can hold beside the scheduler's budget (a device
  // arena); -1: no limit of its own (the CPU backend reads the pool's pages in place).
  virtual int64_t kv_page_capacity(int page_size) const { return -1; }
  // Whether a tiered sequence's device budget must be there from its first step (CUDA keeps every
  // page of a tiered cache in budget slots) rather than once it outgrows the slots (the CPU runs
  // dense until then).
  virtual bool tiered_budget_from_first_step() const { return false; }
  // Bytes of one K or V element in the host tier (the CPU's slabs; CUDA's pinned bf16 pages).
  virtual size_t kv_host_element_bytes() const { return KvDtypeBytes(kv_dtype()); }

  // The memory of `tier`'s KV pages of `shape`, ids below `max_pages` (ggml's backend buffers):
  // the backend owns it until ReleaseKvPageStore or its own end. Host slabs of kv_dtype() by
  // default, which
  // the CPU backend reads and writes in place; null for the device tier of a backend that keeps
  // it in an arena of its own (kv_page_capacity() >= 0, CUDA's bf16 arena): that pool hands out
  // page ids only.
  KvPageStore* AcquireKvPageStore(KvTier tier, const KvPageShape& shape,
                                  int64_t max_pages) override;
  void ReleaseKvPageStore(KvPageStore* store) override;

 private:
  Mutex kv_stores_mu_;
  std::vector<std::unique_ptr<KvPageStore>> kv_stores_ ABSL_GUARDED_BY(kv_stores_mu_);
};

}  // namespace kvserve
