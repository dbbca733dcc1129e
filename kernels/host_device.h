#pragma once

// Lets small index helpers be shared by the CUDA kernels and their plain C++ twins.
#if defined(__CUDACC__)
#define KVSERVE_HOST_DEVICE __host__ __device__
#else
#define KVSERVE_HOST_DEVICE
#endif
