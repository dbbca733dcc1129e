#include "kernels/cpu/vec_dot.h"

#include <cpuid.h>

#include <cstdlib>
#include <string_view>

#include "kernels/cpu/vec_dot_tables.h"

namespace kvserve::kernels::cpu {
namespace {

// F16C from CPUID leaf 1 (ECX bit 29): clang 14's __builtin_cpu_supports does not know "f16c".
bool CpuHasF16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
}

}  // namespace

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512Vnni:
      return "avx512vnni";
  }
  return "?";
}

bool IsaSupported(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return true;
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && CpuHasF16c();
    case Isa::kAvx512Vnni:
      return IsaSupported(Isa::kAvx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512vnni");
  }
  return false;
}

Isa SelectedIsa() {
  static const Isa selected = [] {
    Isa best = Isa::kScalar;
    for (Isa isa : {Isa::kAvx2, Isa::kAvx512Vnni}) {
      if (IsaSupported(isa)) best = isa;
    }
    if (const char* cap = std::getenv("KVSERVE_CPU_ISA"); cap != nullptr) {
      for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512Vnni}) {
        if (std::string_view(cap) == IsaName(isa) && static_cast<int>(isa) < static_cast<int>(best))
          best = isa;
      }
    }
    return best;
  }();
  return selected;
}

const DotKernelTable& KernelTable(Isa isa) {
  switch (isa) {
    case Isa::kAvx2:
      return Avx2KernelTable();
    case Isa::kAvx512Vnni:
      return Avx512VnniKernelTable();
    case Isa::kScalar:
      break;
  }
  return ScalarKernelTable();
}

}  // namespace kvserve::kernels::cpu
