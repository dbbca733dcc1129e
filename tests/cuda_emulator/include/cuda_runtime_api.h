#pragma once

// The CUDA runtime API as the CPU emulator provides it (tests/cuda_emulator): device memory is
// host memory behind guard pages; a launch runs every block on the calling thread, at once or,
// on a created stream in a deferred schedule, when the host synchronises (stream_scheduler.h);
// events order streams. It stands in for CUDA's header when the kernels are built for the
// emulated tests.

#include <cstddef>
#include <cstdint>

#include "cuda_emulator/device_builtins.h"
#include "cuda_emulator/host_types.h"

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);
cudaError_t cudaDeviceSynchronize();
constexpr unsigned int cudaStreamDefault = 0x00;
constexpr unsigned int cudaStreamNonBlocking = 0x01;
cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags = 0);

constexpr unsigned int cudaEventDefault = 0x00;
constexpr unsigned int cudaEventBlockingSync = 0x01;
constexpr unsigned int cudaEventDisableTiming = 0x02;
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

// Page-locked host memory. Mapped memory is also device memory: kernels read and write it
// through the pointer cudaHostGetDevicePointer gives (the host pointer, as with CUDA's UVA).
constexpr unsigned int cudaHostAllocDefault = 0x00;
constexpr unsigned int cudaHostAllocPortable = 0x01;
constexpr unsigned int cudaHostAllocMapped = 0x02;
constexpr unsigned int cudaHostAllocWriteCombined = 0x04;
cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned int flags);
cudaError_t cudaMallocHost(void** ptr, size_t bytes);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaHostGetDevicePointer(void** device_ptr, void* host_ptr, unsigned int flags);

cudaError_t cudaMalloc(void** ptr, size_t bytes);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* ptr, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream = nullptr);
// `height` rows of `width` bytes, `pitch` bytes apart.
cudaError_t cudaMemcpy2D(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width,
                         size_t height, cudaMemcpyKind kind);
cudaError_t cudaMemset2D(void* ptr, size_t pitch, int value, size_t width, size_t height);

// Stream capture and graphs: what a capturing stream is given is recorded, not run, and a launch
// of the instantiated graph issues the same work, with the same arguments, on its stream. Only
// single-stream captures: a wait on an event recorded outside the capture, a synchronisation of
// the capturing stream or a legacy default-stream call while capturing invalidate it, as the
// unsafe calls of CUDA's global capture mode do.
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph,
                                 unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);

// The last launch error, cleared by reading it (as CUDA does for errors that are not sticky).
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t error);
const char* cudaGetErrorName(cudaError_t error);

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value);
template <typename T>
cudaError_t cudaFuncSetAttribute(T* func, cudaFuncAttribute attr, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(func), attr, value);
}

namespace kvserve::cuda_emulator {

// When the work of created streams runs (stream_scheduler.h): at once (eager, the default), or
// queued until the host synchronises, then in issue order or latest first. The environment's
// KVSERVE_CUDA_EMULATOR_STREAMS=eager|issue|latest sets the first one; setting another drains
// what is queued.
enum class StreamSchedule { kEager, kIssueOrder, kLatestFirst };
void SetStreamSchedule(StreamSchedule schedule);
StreamSchedule GetStreamSchedule();

// Kernel launches accepted since the process started (a graph launch adds none: its kernels were
// counted when captured): tests compare launch counts of steps.
uint64_t LaunchCount();

// Times the host waited for the device (a stream, event or device synchronisation, a cudaMemcpy,
// a pageable cudaMemcpyAsync): tests show a step's waits do not grow with its layers.
uint64_t HostWaitCount();

}  // namespace kvserve::cuda_emulator
