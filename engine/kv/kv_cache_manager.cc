#include "engine/kv/kv_cache_manager.h"

#include <algorithm>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/field_violation.h"
#include "engine/base/status_macros.h"
#include "engine/kv/budget_cache.h"
#include "kernels/ceil_div.h"

namespace kvserve {
namespace {

KvPageShape PageShape(const ModelConfig& c, int page_size) {
  return {.n_kv_heads = c.n_kv_heads, .page_size = page_size, .head_dim = c.head_dim};
}

int64_t DevicePages(const ModelConfig& c, const KvCacheBudget& b) {
  int64_t pages = std::min(
      PagePool::kUnbounded,
      PagePool::PagesForBytes(PageShape(c, b.page_size), b.device_bytes, b.device_element_bytes));
  if (b.device_page_capacity >= 0) pages = std::min(pages, b.device_page_capacity);
  return pages;
}

int64_t HostPages(const ModelConfig& c, const KvCacheBudget& b) {
  return std::min(
      PagePool::kUnbounded,
      PagePool::PagesForBytes(PageShape(c, b.page_size), b.host_bytes, b.host_element_bytes));
}

std::unique_ptr<PagePool> MakePool(const KvPageShape& shape, int64_t pages,
                                   KvPageStoreProvider* stores, KvTier tier, KvPageStore** store) {
  if (stores == nullptr) return std::make_unique<PagePool>(shape, pages);
  *store = stores->AcquireKvPageStore(tier, shape, pages);
  return std::make_unique<PagePool>(shape, pages, *store);
}

}  // namespace

KvCacheManager::KvCacheManager(const ModelConfig& config, KvCacheBudget budget,
                               KvPageStoreProvider* stores)
    : config_(config),
      page_size_(std::max(1, budget.page_size)),
      tiered_budget_from_first_step_(budget.tiered_budget_from_first_step),
      stores_(stores) {
  budget.page_size = page_size_;
  const KvPageShape shape = PageShape(config, page_size_);
  device_ = MakePool(shape, DevicePages(config, budget), stores, KvTier::kDevice, &device_store_);
  host_ = MakePool(shape, HostPages(config, budget), stores, KvTier::kHost, &host_store_);
}

// Sequences (and their policies' recalls) are gone before the pools and the recall worker.
KvCacheManager::~KvCacheManager() {
  if (stores_ == nullptr) return;
  stores_->ReleaseKvPageStore(device_store_);
  stores_->ReleaseKvPageStore(host_store_);
}

double KvCacheManager::max_concurrency_at_full_context() const {
  const int64_t per_sequence =
      static_cast<int64_t>(config_.n_layers) * CeilDiv(config_.context_length, page_size_);
  return per_sequence > 0 ? static_cast<double>(device_->total_pages()) / per_sequence : 0.0;
}

absl::Status KvCacheManager::CheckFits(const KvPolicyOptions& options, int64_t peak_tokens) const {
  const TieredOptions* tiered_options = TieredOptionsOf(options);
  const bool tiered = tiered_options != nullptr;
  if (tiered && tiered_options->page_size != page_size_) {
    // The host tier's pages are the selection unit: one page size per server.
    return InvalidField("kv_policy.page_size",
                        absl::StrCat("must be the server's KV page size (", page_size_, "), got ",
                                     tiered_options->page_size));
  }
  const PagePool& home = tiered ? *host_ : *device_;
  const int64_t pages = config_.n_layers * CeilDiv(peak_tokens, static_cast<int64_t>(page_size_));
  if (pages > home.total_pages()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "prompt + max_new_tokens (", peak_tokens + 1, " tokens) needs ", pages, " KV pages, more ",
        tiered ? "than the whole host tier (" : "than the whole pool (", home.total_pages(), ")"));
  }
  return absl::OkStatus();
}

PagePool& KvCacheManager::HomePool(const KvPolicyOptions& options) {
  return TieredOptionsOf(options) != nullptr ? *host_ : *device_;
}

absl::StatusOr<std::unique_ptr<KvPolicy>> KvCacheManager::NewPolicy(
    const KvPolicyOptions& options) {
  try {
    return CreateKvPolicy(options, config_, {.device_pool = device_.get(), .recall = &recall_});
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "no memory for kv policy '", std::string(KvPolicyName(options)), "' of this request"));
  }
}

absl::StatusOr<std::unique_ptr<SequenceKv>> KvCacheManager::Create(const KvPolicyOptions& options) {
  auto kv = std::make_unique<SequenceKv>(HomePool(options), config_.n_layers);
  KVSERVE_ASSIGN_OR_RETURN(kv->policy, NewPolicy(options));
  return kv;
}

void KvCacheManager::Fence(const SequenceKv& kv) {
  if (kv.policy != nullptr) kv.policy->WaitIdle();
}

bool KvCacheManager::Grow(SequenceKv& kv, int tokens, ChunkKind kind) {
  // A new page changes the page tables a recall in flight may be reading.
  if (kv.cache.PagesToGrow(tokens) > 0) Fence(kv);
  if (!kv.cache.Grow(tokens)) return false;
  // The budget serves decode steps only: a prompt never holds device slots it does not use.
  if (kv.policy != nullptr && (kind == ChunkKind::kDecode || tiered_budget_from_first_step_)) {
    ProvideDeviceBudget(*kv.policy, kv.cache, tokens, tiered_budget_from_first_step_);
  }
  return true;
}

void KvCacheManager::Retain(SequenceKv& kv, int layer,
                            const std::vector<std::vector<int32_t>>& rows) {
  Fence(kv);
  kv.cache.Retain(layer, rows);
}

absl::Status KvCacheManager::Reset(SequenceKv& kv, const KvPolicyOptions& options) {
  Fence(kv);  // no recall reads the pages once they go back
  kv.cache.Release();
  kv.policy.reset();
  KVSERVE_ASSIGN_OR_RETURN(kv.policy, NewPolicy(options));
  return absl::OkStatus();
}

void KvCacheManager::Truncate(SequenceKv& kv, int layer, int rows) {
  Fence(kv);
  kv.cache.Truncate(layer, rows);
}

KvStats KvCacheManager::Release(SequenceKv& kv) {
  Fence(kv);
  KvStats stats = kv.policy != nullptr ? kv.policy->Stats(kv.cache) : KvStats{};
  // The policy's device budget pages go now rather than when the sequence is destroyed.
  kv.policy.reset();
  kv.cache.Release();
  return stats;
}

}  // namespace kvserve
