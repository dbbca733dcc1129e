#include "device_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <mutex>

namespace kvserve::cuda_emulator {
namespace {

constexpr size_t kAlignment = 256;

struct Mapping {
  void* base;
  size_t mapped;
  size_t bytes;  // as requested
  bool device_visible = true;
};

using Registry = std::map<uintptr_t, Mapping>;

std::mutex& Lock() {
  static std::mutex mutex;
  return mutex;
}

Registry& Live() {
  static Registry live;
  return live;
}

Registry& LivePinned() {
  static Registry live;
  return live;
}

size_t PageBytes() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }

void* AllocateIn(Registry& registry, size_t bytes, bool device_visible) {
  const size_t page = PageBytes();
  const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  const size_t body = (rounded + page - 1) / page * page;
  const size_t mapped = body + 2 * page;
  void* base = mmap(nullptr, mapped, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return nullptr;
  char* body_start = static_cast<char*>(base) + page;
  if (mprotect(body_start, body, PROT_READ | PROT_WRITE) != 0) {
    munmap(base, mapped);
    return nullptr;
  }
  char* ptr = body_start + (body - rounded);
  std::lock_guard<std::mutex> lock(Lock());
  registry[reinterpret_cast<uintptr_t>(ptr)] = Mapping{base, mapped, bytes, device_visible};
  return ptr;
}

bool FreeIn(Registry& registry, void* ptr) {
  std::lock_guard<std::mutex> lock(Lock());
  const auto it = registry.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == registry.end()) return false;
  munmap(it->second.base, it->second.mapped);
  registry.erase(it);
  return true;
}

bool ContainsIn(const Registry& registry, const void* ptr, size_t bytes, bool device_only) {
  const auto at = reinterpret_cast<uintptr_t>(ptr);
  std::lock_guard<std::mutex> lock(Lock());
  auto it = registry.upper_bound(at);
  if (it == registry.begin()) return false;
  --it;
  return at + bytes <= it->first + it->second.bytes && (!device_only || it->second.device_visible);
}

}  // namespace

void* DeviceMemory::Allocate(size_t bytes) { return AllocateIn(Live(), bytes, true); }
bool DeviceMemory::Free(void* ptr) { return FreeIn(Live(), ptr); }
bool DeviceMemory::Contains(const void* ptr, size_t bytes) {
  return ContainsIn(Live(), ptr, bytes, false);
}

void* PinnedMemory::Allocate(size_t bytes, bool mapped) {
  return AllocateIn(LivePinned(), bytes, mapped);
}
bool PinnedMemory::Free(void* ptr) { return FreeIn(LivePinned(), ptr); }
bool PinnedMemory::Contains(const void* ptr, size_t bytes, bool mapped_only) {
  return ContainsIn(LivePinned(), ptr, bytes, mapped_only);
}

size_t DeviceMemory::BytesInUse() {
  std::lock_guard<std::mutex> lock(Lock());
  size_t total = 0;
  for (const auto& [start, mapping] : Live()) total += mapping.bytes;
  return total;
}

}  // namespace kvserve::cuda_emulator
