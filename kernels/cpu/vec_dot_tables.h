#pragma once

#include "kernels/cpu/vec_dot.h"

namespace kvserve::kernels::cpu {

// Each ISA's table, defined in its own translation unit (compiled with that ISA's flags).
const DotKernelTable& ScalarKernelTable();
const DotKernelTable& Avx2KernelTable();
const DotKernelTable& Avx512VnniKernelTable();

}  // namespace kvserve::kernels::cpu
