#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/kv/decode_page_lists.h"
#include "engine/kv/prompt_compression.h"
#include "engine/kv/sequence_kv_cache.h"
#include "engine/kv/token_selection.h"
#include "engine/model/model_config.h"

namespace kvserve {

// quest / freekv: GPU tokens per layer and KV head when `budget` is 0 (research/freekv.md §5).
inline constexpr int kDefaultTieredBudget = 2048;

// A request's choice of KV policy and its options (DESIGN.md § KV policies). Unset numeric options
// keep these defaults; `budget` 0 means the policy's own default.
struct KvPolicyOptions {
  std::string name = "full";  // full | snapkv | fastkv | quest | freekv | fastkv_freekv
  // snapkv / fastkv (research/fastkv.md §6, v3 defaults)
  int window = 8;
  int pool_kernel = 7;
  ScorePooling pool = ScorePooling::kMax;
  int budget = 0;  // constant budget in tokens; 0: retain_rate (snapkv/fastkv), 2048 (freekv)
  float retain_rate = 0.1f;  // ρ
  int tsp_layer = -1;        // -1: n_layers / 2 - 1
  float tsp_rate = 0.2f;     // τ
  int tsp_len = 0;           // constant TSP length; 0: tsp_rate
  // quest / freekv (research/freekv.md)
  int page_size = 32;
  int sink = 512;
  int recent = 512;
  float tau = 0.8f;
};

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

  // The stats so far; `kv` gives the kept tokens per layer.
  virtual KvStats Stats(const SequenceKvCache& kv) const;
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

// Whether `name` keeps the full KV in the host tier and a device budget (quest, freekv,
// fastkv_freekv): the sequence's cache then lives in the host pool.
bool IsTieredKvPolicy(std::string_view name);

// Every policy name, in DESIGN.md's order.
std::span<const std::string_view> KvPolicyNames();

// Checks every option against the model (whichever policy is named), plus FastKV's mode
// cross-checks (retain_rate <= tsp_rate when both are rates; budget <= tsp_len when both are
// constants). InvalidArgument whose message starts "kv OPTION", OPTION being the field's name
// ("kv tsp_rate must be in (0, 1], got 1.5"; "kv policy 'x' is unknown ..."), so front ends can
// name their own flag or field.
absl::Status ValidateKvPolicyOptions(const KvPolicyOptions& options, const ModelConfig& config);

// A fresh policy for one sequence; validates first. Tiered policies take `resources`.
absl::StatusOr<std::unique_ptr<KvPolicy>> CreateKvPolicy(const KvPolicyOptions& options,
                                                         const ModelConfig& config,
                                                         KvPolicyResources resources = {});

}  // namespace kvserve
