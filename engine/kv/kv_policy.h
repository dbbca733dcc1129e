#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/kv/decode_page_lists.h"
#include "engine/kv/kv_policy_options.h"
#include "engine/kv/prompt_compression.h"
#include "engine/kv/sequence_kv_cache.h"
#include "engine/kv/token_selection.h"
#include "engine/model/model_config.h"

namespace kvserve {

// What a policy did to a sequence, reported in the CLI JSON `kv` object and the final gRPC message.
struct KvStats {
  std::string policy;
  std::vector<int> kept_tokens;         // per layer, at the end
  int tsp_tokens = 0;                   // fastkv: rows propagated past the TSP layer
  double prefill_flops_fraction = 1.0;  // executed / full-prefill FLOPs
  int64_t host_tokens = 0;              // quest/freekv
  int64_t recalled_pages = 0;
  int64_t recalled_bytes = 0;
  int64_t corrections = 0;
  double correction_rate = 0.0;       // of (step, layer, KV head) checks, corrected
  double step_correction_rate = 0.0;  // of (step, layer) checks, any head corrected
  int64_t decode_steps = 0;           // decode tokens the policy saw
  double resident_fraction = 1.0;
};

class BudgetCache;

// What a backend that runs a tiered policy on its own device (CUDA) counted for one sequence in a
// step: the CPU policy counts the same in its decode hooks, which such a backend does not call.
struct DeviceKvCounts {
  int64_t decode_steps = 0;
  int64_t recalled_pages = 0;   // pages selection brought into the budget
  int64_t recalled_bytes = 0;   // their keys and values as the backend stores them
  int64_t checks = 0;           // (layer, KV head) correction checks
  int64_t corrections = 0;      // of which corrected
  int64_t layer_steps = 0;      // (step, layer) correction checks
  int64_t steps_corrected = 0;  // of which any KV head corrected
  bool empty() const { return decode_steps == 0 && recalled_pages == 0 && checks == 0; }
};

// One sequence's KV policy. The backend calls it on the engine thread while it runs the sequence.
class KvPolicy {
 public:
  virtual ~KvPolicy() = default;
  virtual std::string_view name() const = 0;

  // The prompt must reach the backend as one chunk (`SequenceChunk::whole_prompt`): scoring needs
  // the last queries against the whole prompt at every layer, and TSP gathers the prompt's rows.
  virtual bool needs_whole_prompt() const { return false; }

  // The compression plan for a whole-prompt chunk of `n` tokens (empty: none), a function of `n`
  // and the options; the backend executes it and the policy reports on the last one planned.
  virtual PromptCompressionPlan PlanPrompt(int n) { return {}; }

  // Decode hooks (quest/freekv), in the backend's order for each layer of a one-token chunk:
  // Begin before its K/V is appended; Prepare after, with the token's post-RoPE query
  // [n_heads][head_dim] (false: attend densely over `kv` as usual); when it returned true,
  // DecodePages adds the layer's page lists (one per KV head, in CSR form) that attention reads
  // instead of the whole cache; Finish after the attention.
  virtual void BeginDecodeLayer(int layer) {}
  virtual bool PrepareDecodeAttention(int layer, const float* q, const SequenceKvCache& kv) {
    return false;
  }
  virtual void DecodePages(int layer, DecodePageLists* lists) const {}
  virtual void FinishDecodeAttention(int layer, const float* q, const SequenceKvCache& kv) {}
  // Returns once no background work of the policy reads the cache: before the cache grows a
  // page table, is released, or is read for stats.
  virtual void WaitIdle() const {}

  // A tiered policy's device budget, which the cache's owner allocates between steps
  // (ProvideDeviceBudget); the policy only reads whether it has it. Null for other policies.
  virtual BudgetCache* device_budget() { return nullptr; }

  // The stats so far; `kv` gives the kept tokens per layer.
  virtual KvStats Stats(const SequenceKvCache& kv) const;

  // Adds what a device backend counted in a step (StepOutput::kv_counts) to the stats.
  virtual void RecordDeviceCounts(const DeviceKvCounts& counts) {}

  // What a backend keeps on its device for this sequence (CUDA's tiered residency, digests and
  // queries): it goes with the policy, at finish, cancel and preemption.
  class BackendState {
   public:
    virtual ~BackendState() = default;
  };
  BackendState* backend_state() const { return backend_state_.get(); }
  void set_backend_state(std::unique_ptr<BackendState> state) { backend_state_ = std::move(state); }

 private:
  std::unique_ptr<BackendState> backend_state_;
};

class PagePool;
class RecallExecutor;

// What tiered policies (quest, freekv, fastkv_freekv) share across sequences: the device pool
// their budget pages come from and the executor their recalls run on. Null members: a private
// unbounded pool and synchronous recall.
struct KvPolicyResources {
  PagePool* device_pool = nullptr;
  RecallExecutor* recall = nullptr;
};

// A fresh policy for one sequence; validates first. Tiered policies take `resources`.
absl::StatusOr<std::unique_ptr<KvPolicy>> CreateKvPolicy(const KvPolicyOptions& options,
                                                         const ModelConfig& config,
                                                         KvPolicyResources resources = {});

}  // namespace kvserve
