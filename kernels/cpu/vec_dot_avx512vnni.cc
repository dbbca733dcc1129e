// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni (kernels/cpu/CMakeLists.txt); only
// reached when the CPU reports those features.
#define KVSERVE_X86_VNNI 1
#include "kernels/cpu/vec_dot_tables.h"
#include "kernels/cpu/vec_dot_x86_impl.h"

namespace kvserve::kernels::cpu {

const DotKernelTable& Avx512VnniKernelTable() { return X86KernelTable(Isa::kAvx512Vnni); }

}  // namespace kvserve::kernels::cpu
