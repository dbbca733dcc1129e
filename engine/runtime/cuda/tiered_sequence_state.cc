#include "engine/runtime/cuda/tiered_sequence_state.h"

#include <cuda_runtime_api.h>

#include "absl/strings/str_cat.h"
#include "engine/runtime/cuda/device_memory_pool.h"

namespace kvserve::cuda {

absl::StatusOr<std::unique_ptr<TieredSequenceState>> TieredSequenceState::Create(
    const ModelConfig& c, const kernels::TieredLayout& layout, int page_size, int max_pages,
    std::span<const int32_t> budget_pages) {
  std::unique_ptr<TieredSequenceState> s(new TieredSequenceState());
  s->n_kv_heads_ = c.n_kv_heads;
  s->n_heads_ = c.n_heads;
  s->head_dim_ = c.head_dim;
  s->page_size_ = page_size;
  s->max_pages_ = max_pages;
  s->layout_ = layout;
  s->dense_resident.assign(c.n_layers, 0);
  const size_t L = c.n_layers, H = c.n_kv_heads, S = layout.slots, M = max_pages;
  if (budget_pages.size() != L * S) {
    return absl::InternalError("cuda backend: tiered budget pages of another layout");
  }
  // Sections: the -1-filled maps first, then what starts at zero.
  const size_t maps = AlignDeviceBytes(L * H * (S + M) * sizeof(int32_t));
  const size_t ints = AlignDeviceBytes((2 * L * H + L * S + 4) * sizeof(int32_t));
  const size_t digests = AlignDeviceBytes(L * M * H * 2 * c.head_dim * sizeof(float));
  const size_t queries = AlignDeviceBytes(L * c.n_heads * c.head_dim * sizeof(kernels::Bf16));
  const size_t flags = AlignDeviceBytes(L);
  const size_t bytes = maps + ints + digests + queries + flags;
  void* block = nullptr;
  if (cudaMalloc(&block, bytes) != cudaSuccess) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "cuda backend: no device memory for a tiered sequence's state (", bytes, " bytes)"));
  }
  s->block_ = static_cast<char*>(block);
  char* at = s->block_;
  s->slot_page_ = reinterpret_cast<int32_t*>(at);
  s->page_slot_ = s->slot_page_ + L * H * S;
  at += maps;
  s->n_pages_ = reinterpret_cast<int32_t*>(at);
  s->next_window_ = s->n_pages_ + L * H;
  s->budget_ = s->next_window_ + L * H;
  s->counters_ = s->budget_ + L * S;
  at += ints;
  s->digests_ = reinterpret_cast<float*>(at);
  at += digests;
  s->last_q_ = reinterpret_cast<kernels::Bf16*>(at);
  at += queries;
  s->has_last_q_ = reinterpret_cast<uint8_t*>(at);
  cudaError_t e = cudaMemset(s->block_, 0xff, maps);
  if (e == cudaSuccess) e = cudaMemset(s->block_ + maps, 0, bytes - maps);
  if (e == cudaSuccess) {
    e = cudaMemcpy(s->budget_, budget_pages.data(), budget_pages.size() * sizeof(int32_t),
                   cudaMemcpyHostToDevice);
  }
  if (e != cudaSuccess) {
    return absl::InternalError(
        absl::StrCat("cuda backend: tiered state init: ", cudaGetErrorString(e)));
  }
  return s;
}

TieredSequenceState::~TieredSequenceState() {
  if (block_ == nullptr) return;
  // A speculative recall on the recall stream may still write the maps.
  cudaDeviceSynchronize();
  cudaFree(block_);
}

kernels::ResidencyState TieredSequenceState::residency(int layer) const {
  const size_t unit = static_cast<size_t>(layer) * n_kv_heads_;
  return {.slot_page = slot_page_ + unit * layout_.slots,
          .page_slot = page_slot_ + unit * max_pages_,
          .max_pages = max_pages_,
          .n_pages = n_pages_ + unit,
          .next_window = next_window_ + unit};
}

float* TieredSequenceState::digests(int layer) const {
  return digests_ + static_cast<size_t>(layer) * max_pages_ * n_kv_heads_ * 2 * head_dim_;
}

kernels::Bf16* TieredSequenceState::last_q(int layer) const {
  return last_q_ + static_cast<size_t>(layer) * n_heads_ * head_dim_;
}

uint8_t* TieredSequenceState::has_last_q(int layer) const { return has_last_q_ + layer; }

const int32_t* TieredSequenceState::budget_pages(int layer) const {
  return budget_ + static_cast<size_t>(layer) * layout_.slots;
}

}  // namespace kvserve::cuda
