#pragma once

// The emulator's cuda_runtime.h: the runtime API plus the typed launch, which runs every block of
// the grid on the calling thread, when its stream's turn comes (stream_scheduler.h).

#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda_runtime_api.h"

namespace kvserve::cuda_emulator {

// Runs `thread` once per thread of every block of `config`'s grid, in stream order; `kernel`
// identifies the function for its attributes (the dynamic shared memory it may use).
cudaError_t LaunchGrid(const cudaLaunchConfig_t& config, const void* kernel,
                       std::function<void()> thread);

}  // namespace kvserve::cuda_emulator

template <typename... ExpTypes, typename... ActTypes>
cudaError_t cudaLaunchKernelEx(const cudaLaunchConfig_t* config, void (*kernel)(ExpTypes...),
                               ActTypes&&... args) {
  if (config == nullptr || kernel == nullptr) return cudaErrorInvalidValue;
  // The arguments are converted to the kernel's parameter types once and copied, as CUDA does:
  // the launch may run after the caller's variables are gone.
  std::tuple<std::decay_t<ExpTypes>...> bound(
      static_cast<ExpTypes>(std::forward<ActTypes>(args))...);
  return ::kvserve::cuda_emulator::LaunchGrid(
      *config, reinterpret_cast<const void*>(kernel),
      [kernel, bound = std::move(bound)] { std::apply(kernel, bound); });
}
