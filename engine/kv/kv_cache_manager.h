#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/kv/chunk_kind.h"
#include "engine/kv/kv_page_store.h"
#include "engine/kv/kv_policy.h"
#include "engine/kv/kv_policy_options.h"
#include "engine/kv/page_pool.h"
#include "engine/kv/recall_executor.h"
#include "engine/kv/sequence_kv_cache.h"
#include "engine/model/model_config.h"

namespace kvserve {

// What the KV cache may use: bytes of the device pool (bought in the backend's KV element size)
// and of the host tier (each in the backend's element size), and the backend's own page limit.
struct KvCacheBudget {
  int page_size = kDefaultKvPageSize;
  int64_t device_bytes = int64_t{2} << 30;
  int64_t host_bytes = int64_t{8} << 30;
  size_t device_element_bytes = sizeof(float);  // Backend::kv_element_bytes()
  int64_t device_page_capacity = -1;            // Backend::kv_page_capacity(); -1: none
  size_t host_element_bytes = sizeof(float);    // Backend::kv_host_element_bytes()
  bool tiered_budget_from_first_step = false;   // Backend::tiered_budget_from_first_step()
};

// One sequence's KV as the manager hands it out: its page tables and lengths per layer (in the
// device pool, or in the host tier for tiered policies) and the policy that plans its KV.
struct SequenceKv {
  SequenceKv(PagePool& pool, int n_layers) : cache(pool, n_layers) {}
  SequenceKvCache cache;
  std::unique_ptr<KvPolicy> policy;
};

// Page ids and their accounting for the device pool and the host tier (nano-vllm's block
// manager, vLLM's KVCacheManager). Only the engine thread calls it; it is the only one that grows
// or releases a sequence's page tables between steps, and it fences a policy's background readers
// (the FreeKV recall worker) itself before it changes pages they may read.
class KvCacheManager {
 public:
  // Each tier's page memory comes from `stores` (the backend), given back at the end; without
  // one the pools hold their own fp32 pages.
  KvCacheManager(const ModelConfig& config, KvCacheBudget budget,
                 KvPageStoreProvider* stores = nullptr);
  ~KvCacheManager();
  KvCacheManager(const KvCacheManager&) = delete;
  KvCacheManager& operator=(const KvCacheManager&) = delete;

  int page_size() const { return page_size_; }
  // Counters: safe to read from any thread.
  int64_t device_pages_total() const { return device_->total_pages(); }
  int64_t device_pages_used() const { return device_->used_pages(); }
  int64_t host_pages_total() const { return host_->total_pages(); }
  int64_t host_pages_used() const { return host_->used_pages(); }
  // Sequences the device pool holds at the model's full context.
  double max_concurrency_at_full_context() const;

  // Whether a request of `options` whose cache peaks at `peak_tokens` could ever fit its pool (the
  // host tier for tiered policies): InvalidArgument for a tiered page size other than the pool's,
  // ResourceExhausted naming the pages it needs.
  absl::Status CheckFits(const KvPolicyOptions& options, int64_t peak_tokens) const;

  // An empty cache and a fresh policy for `options` (validated before); ResourceExhausted when
  // the policy's own state cannot be allocated.
  absl::StatusOr<std::unique_ptr<SequenceKv>> Create(const KvPolicyOptions& options);

  // Takes the pages every layer of `kv` needs for `tokens` more, all or none: false when the pool
  // is short. Idempotent for a given length. Before a decode step it also gives a tiered policy
  // its device budget, once, when the cache outgrows the budget's slots (a short device pool
  // leaves that sequence dense for good; the step goes on either way); before its first step
  // when the backend asks for it then (KvCacheBudget::tiered_budget_from_first_step).
  bool Grow(SequenceKv& kv, int tokens, ChunkKind kind);

  // Applies a prompt's compression, decided by the backend in the last step, to `kv`: each listed
  // layer keeps its KV heads' rows (SequenceKvCache::Retain) and frees the pages left over.
  void Retain(SequenceKv& kv, int layer, const std::vector<std::vector<int32_t>>& rows);
  // The layer keeps its first `rows` rows, which a backend with its own arena compacted there
  // (SequenceKvCache::Truncate), and frees the pages left over.
  void Truncate(SequenceKv& kv, int layer, int rows);

  // Preemption: gives `kv`'s pages back and starts it over with a fresh policy for `options`
  // (policy state describes the cache it has seen). An error leaves `kv` without a policy.
  absl::Status Reset(SequenceKv& kv, const KvPolicyOptions& options);

  // The end of a sequence: its policy's stats, then every page (and the policy's device budget)
  // back to the pools. `kv` keeps no policy after.
  KvStats Release(SequenceKv& kv);

 private:
  absl::StatusOr<std::unique_ptr<KvPolicy>> NewPolicy(const KvPolicyOptions& options);
  PagePool& HomePool(const KvPolicyOptions& options);
  // Returns once no background job of `kv`'s policy reads its pages.
  static void Fence(const SequenceKv& kv);

  ModelConfig config_;
  int page_size_;
  bool tiered_budget_from_first_step_;
  KvPageStoreProvider* stores_;
  KvPageStore* device_store_ = nullptr;  // the backend's; null: ids only (a device arena)
  KvPageStore* host_store_ = nullptr;
  std::unique_ptr<PagePool> device_;  // full/snapkv/fastkv caches, tiered policies' budgets
  std::unique_ptr<PagePool> host_;    // tiered policies' full caches
  ThreadRecallExecutor recall_;
};

}  // namespace kvserve
