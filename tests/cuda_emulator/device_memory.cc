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
};

std::mutex& Lock() {
  static std::mutex mutex;
  return mutex;
}

std::map<uintptr_t, Mapping>& Live() {
  static std::map<uintptr_t, Mapping> live;
  return live;
}

size_t PageBytes() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }

}  // namespace

void* DeviceMemory::Allocate(size_t bytes) {
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
  Live()[reinterpret_cast<uintptr_t>(ptr)] = Mapping{base, mapped, bytes};
  return ptr;
}

bool DeviceMemory::Free(void* ptr) {
  std::lock_guard<std::mutex> lock(Lock());
  const auto it = Live().find(reinterpret_cast<uintptr_t>(ptr));
  if (it == Live().end()) return false;
  munmap(it->second.base, it->second.mapped);
  Live().erase(it);
  return true;
}

bool DeviceMemory::Contains(const void* ptr, size_t bytes) {
  const auto at = reinterpret_cast<uintptr_t>(ptr);
  std::lock_guard<std::mutex> lock(Lock());
  auto it = Live().upper_bound(at);
  if (it == Live().begin()) return false;
  --it;
  return at + bytes <= it->first + it->second.bytes;
}

size_t DeviceMemory::BytesInUse() {
  std::lock_guard<std::mutex> lock(Lock());
  size_t total = 0;
  for (const auto& [start, mapping] : Live()) total += mapping.bytes;
  return total;
}

}  // namespace kvserve::cuda_emulator
