#define KVSERVE_X86_VNNI 0
#include "kernels/cpu/vec_dot_tables.h"
#include "kernels/cpu/vec_dot_x86_impl.h"

namespace kvserve::kernels::cpu {

const DotKernelTable& Avx2KernelTable() { return X86KernelTable(Isa::kAvx2); }

}  // namespace kvserve::kernels::cpu
