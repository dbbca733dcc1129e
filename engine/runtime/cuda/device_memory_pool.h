#pragma once

#include <cstddef>
#include <memory>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace kvserve::cuda {

// All the device memory the CUDA backend uses: one cudaMalloc of a fraction of the memory free at
// start, carved three ways so nothing is allocated while the engine runs.
//
//   [ persistent (weights, tables) | KV arena, grows up ->      <- step scratch, grows down ]
//
// Persistent memory is taken once, at load. The KV arena starts right after it and holds page p
// at kv_base() + p * page bytes: its high-water mark only rises, so pages never move. Step scratch
// holds one step's activations; a step larger than any before moves its start down (contents are
// not kept between steps). The two growing regions fail cleanly when they would meet.
class DeviceMemoryPool {
 public:
  // Reserves `fraction` (0, 1] of the current device's free memory.
  static absl::StatusOr<std::unique_ptr<DeviceMemoryPool>> Create(double fraction);
  ~DeviceMemoryPool();
  DeviceMemoryPool(const DeviceMemoryPool&) = delete;
  DeviceMemoryPool& operator=(const DeviceMemoryPool&) = delete;

  size_t capacity() const { return capacity_; }
  size_t persistent_bytes() const { return front_; }
  size_t scratch_bytes() const { return scratch_; }
  size_t kv_bytes() const { return kv_; }
  // Bytes between the persistent region and the scratch: the most the KV arena can reach.
  size_t kv_room() const { return capacity_ - scratch_ - front_; }

  // `bytes` of persistent memory (256-byte aligned); only before the KV arena is first used.
  absl::StatusOr<void*> TakePersistent(size_t bytes, absl::string_view what);

  char* kv_base() const { return base_ + front_; }
  // Makes the arena's first `bytes` usable; ResourceExhausted when they would reach the scratch.
  absl::Status EnsureKvBytes(size_t bytes);

  // Step scratch of at least `bytes`, 256-byte aligned; its start moves down when it grows.
  absl::StatusOr<char*> StepScratch(size_t bytes);

 private:
  DeviceMemoryPool(char* base, size_t capacity) : base_(base), capacity_(capacity) {}

  char* base_;
  size_t capacity_;
  size_t front_ = 0;    // persistent bytes from base_
  size_t kv_ = 0;       // KV arena high-water mark from kv_base()
  size_t scratch_ = 0;  // scratch bytes at the end
};

// `bytes` rounded up to the pool's alignment (256 bytes, what cuBLASLt assumes of its operands).
constexpr size_t AlignDeviceBytes(size_t bytes) { return (bytes + 255) / 256 * 256; }

}  // namespace kvserve::cuda
