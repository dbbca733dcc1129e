#include "engine/runtime/cuda/tiered_state_pool.h"

#include <cuda_runtime_api.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/runtime/cuda/cuda_status.h"

namespace kvserve::cuda {
namespace {

constexpr int kInitialRows = 4;

}  // namespace

absl::StatusOr<std::shared_ptr<TieredStatePool>> TieredStatePool::Create(
    const ModelConfig& c, const kernels::TieredLayout& layout, int page_size, int max_pages) {
  std::shared_ptr<TieredStatePool> p(new TieredStatePool());
  p->n_kv_heads_ = c.n_kv_heads;
  p->n_heads_ = c.n_heads;
  p->head_dim_ = c.head_dim;
  p->page_size_ = page_size;
  p->max_pages_ = max_pages;
  p->layout_ = layout;
  const size_t H = c.n_kv_heads, S = layout.slots, M = max_pages, L = c.n_layers;
  auto& s = p->sections_;
  s[kSlotPage] = {.per_row = H * S * sizeof(int32_t), .layers = int(L), .fill = 0xff};
  s[kPageSlot] = {.per_row = H * M * sizeof(int32_t), .layers = int(L), .fill = 0xff};
  s[kNPages] = {.per_row = H * sizeof(int32_t), .layers = int(L), .fill = 0};
  s[kNextWindow] = {.per_row = H * sizeof(int32_t), .layers = int(L), .fill = 0};
  s[kDigests] = {.per_row = M * H * 2 * c.head_dim * sizeof(float), .layers = int(L)};
  s[kLastQ] = {.per_row = size_t(c.n_heads) * c.head_dim * sizeof(kernels::Bf16), .layers = int(L)};
  s[kHasLastQ] = {.per_row = 1, .layers = int(L), .fill = 0};
  // The counters as [counter][row]: QueryDriftParams indexes each by row.
  s[kCounterRows] = {.per_row = sizeof(int32_t), .layers = kCounters, .fill = 0};
  KVSERVE_RETURN_IF_ERROR(p->Grow(kInitialRows));
  return p;
}

TieredStatePool::~TieredStatePool() {
  // A speculative recall on the recall stream may still write the maps.
  cudaDeviceSynchronize();
  for (const Section& s : sections_) cudaFree(s.data);
}

absl::Status TieredStatePool::Grow(int capacity) {
  KVSERVE_RETURN_IF_ERROR(CudaStatus(cudaDeviceSynchronize(), "tiered state pool"));
  for (Section& s : sections_) {
    const size_t bytes = s.per_row * s.layers * capacity;
    void* grown = nullptr;
    if (cudaMalloc(&grown, bytes) != cudaSuccess) {
      cudaGetLastError();
      return absl::ResourceExhaustedError(
          absl::StrCat("cuda backend: no device memory for the tiered sequences' state (", capacity,
                       " rows, ", bytes, " bytes for one array)"));
    }
    if (s.data != nullptr) {
      // Each layer's rows move together: [layer][old rows] into [layer][new rows].
      KVSERVE_RETURN_IF_ERROR(
          CudaStatus(cudaMemcpy2D(grown, capacity * s.per_row, s.data, capacity_ * s.per_row,
                                  capacity_ * s.per_row, s.layers, cudaMemcpyDeviceToDevice),
                     "tiered state pool growth"));
      KVSERVE_RETURN_IF_ERROR(CudaStatus(cudaDeviceSynchronize(), "tiered state pool growth"));
      cudaFree(s.data);
    }
    s.data = static_cast<char*>(grown);
  }
  capacity_ = capacity;
  in_use_.resize(capacity, 0);
  return absl::OkStatus();
}

absl::StatusOr<int> TieredStatePool::Acquire() {
  auto free = std::find(in_use_.begin(), in_use_.end(), 0);
  if (free == in_use_.end()) {
    KVSERVE_RETURN_IF_ERROR(Grow(2 * capacity_));
    free = std::find(in_use_.begin(), in_use_.end(), 0);
  }
  const int row = static_cast<int>(free - in_use_.begin());
  // The row's previous owner may still have a speculative recall queued that writes its maps.
  KVSERVE_RETURN_IF_ERROR(CudaStatus(cudaDeviceSynchronize(), "tiered state row"));
  for (const Section& s : sections_) {
    if (s.fill < 0) continue;
    KVSERVE_RETURN_IF_ERROR(CudaStatus(
        cudaMemset2D(s.data + row * s.per_row, capacity_ * s.per_row, s.fill, s.per_row, s.layers),
        "tiered state row"));
  }
  // The resets run on the legacy stream; the backend's streams do not wait for it.
  KVSERVE_RETURN_IF_ERROR(CudaStatus(cudaDeviceSynchronize(), "tiered state row"));
  *free = 1;
  return row;
}

void TieredStatePool::Release(int row) {
  if (row >= 0 && row < capacity_) in_use_[row] = 0;
}

int TieredStatePool::rows_in_use() const {
  return static_cast<int>(std::count(in_use_.begin(), in_use_.end(), 1));
}

kernels::ResidencyState TieredStatePool::residency(int layer, const int32_t* state_rows) const {
  return {.slot_page = reinterpret_cast<int32_t*>(sections_[kSlotPage].At(layer, capacity_)),
          .page_slot = reinterpret_cast<int32_t*>(sections_[kPageSlot].At(layer, capacity_)),
          .max_pages = max_pages_,
          .n_pages = reinterpret_cast<int32_t*>(sections_[kNPages].At(layer, capacity_)),
          .next_window = reinterpret_cast<int32_t*>(sections_[kNextWindow].At(layer, capacity_)),
          .state_rows = state_rows};
}

float* TieredStatePool::digests(int layer) const {
  return reinterpret_cast<float*>(sections_[kDigests].At(layer, capacity_));
}

kernels::Bf16* TieredStatePool::last_q(int layer) const {
  return reinterpret_cast<kernels::Bf16*>(sections_[kLastQ].At(layer, capacity_));
}

uint8_t* TieredStatePool::has_last_q(int layer) const {
  return reinterpret_cast<uint8_t*>(sections_[kHasLastQ].At(layer, capacity_));
}

int32_t* TieredStatePool::counters(int k) const {
  return reinterpret_cast<int32_t*>(sections_[kCounterRows].At(k, capacity_));
}

absl::StatusOr<std::vector<int32_t>> TieredStatePool::ReadCounters() const {
  std::vector<int32_t> all(static_cast<size_t>(kCounters) * capacity_);
  KVSERVE_RETURN_IF_ERROR(
      CudaStatus(cudaMemcpy(all.data(), sections_[kCounterRows].data, all.size() * sizeof(int32_t),
                            cudaMemcpyDeviceToHost),
                 "correction counts"));
  return all;
}

}  // namespace kvserve::cuda
