// The thin layer between the kernel sources and the GPU runtime.  Every runtime call, type and
// device intrinsic the backend uses is named here once, as gpu*, and mapped to CUDA (or, when
// RWKVRT_GPU_HIP is defined, to HIP), so the kernels and the host code around them can be shared
// by a ROCm build the way ggml builds its HIP backend from its CUDA sources.
//
// Kernels are written for "logical warps" of 32 lanes: every shuffle passes width 32, so they
// also run on 64-wide AMD wavefronts (each half forms one logical warp).
#pragma once

#include <cstdint>

#if defined(RWKVRT_GPU_HIP)
#include <hip/hip_bf16.h>
#include <hip/hip_fp16.h>
#include <hip/hip_runtime.h>
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#endif

#if defined(RWKVRT_GPU_HIP)
// ---- HIP ---------------------------------------------------------------------------------------
using gpuError_t = hipError_t;
using gpuStream_t = hipStream_t;
using gpuEvent_t = hipEvent_t;
using gpuGraph_t = hipGraph_t;
using gpuGraphExec_t = hipGraphExec_t;
using gpuDeviceProp = hipDeviceProp_t;
using gpu_half = __half;
using gpu_half2 = __half2;
using gpu_bf16 = __hip_bfloat16;
#define gpuSuccess hipSuccess
#define gpuErrorNotReady hipErrorNotReady
#define gpuErrorMemoryAllocation hipErrorOutOfMemory
#define gpuErrorInvalidValue hipErrorInvalidValue
#define gpuErrorInsufficientDriver hipErrorInsufficientDriver
#define gpuErrorNoDevice hipErrorNoDevice
#define gpuGetErrorString hipGetErrorString
#define gpuGetLastError hipGetLastError
#define gpuDriverGetVersion hipDriverGetVersion
#define gpuRuntimeGetVersion hipRuntimeGetVersion
#define gpuGetDeviceCount hipGetDeviceCount
#define gpuGetDeviceProperties hipGetDeviceProperties
#define gpuSetDevice hipSetDevice
#define gpuMemGetInfo hipMemGetInfo
#define gpuMalloc hipMalloc
#define gpuFree hipFree
#define gpuHostAlloc(p, n) hipHostMalloc((p), (n), hipHostMallocDefault)
#define gpuFreeHost hipHostFree
#define gpuMemcpy hipMemcpy
#define gpuMemcpyAsync hipMemcpyAsync
#define gpuMemsetAsync hipMemsetAsync
#define gpuMemcpyHostToDevice hipMemcpyHostToDevice
#define gpuMemcpyDeviceToHost hipMemcpyDeviceToHost
#define gpuMemcpyDeviceToDevice hipMemcpyDeviceToDevice
#define gpuStreamCreateNonBlocking(s) hipStreamCreateWithFlags((s), hipStreamNonBlocking)
#define gpuStreamDestroy hipStreamDestroy
// Waits for the work of the legacy (null) stream, where synchronous copies run.
#define gpuLegacyStreamSynchronize() hipStreamSynchronize(nullptr)
#define gpuStreamSynchronize hipStreamSynchronize
#define gpuStreamIsCapturing hipStreamIsCapturing
#define gpuStreamCaptureStatus hipStreamCaptureStatus
#define gpuStreamCaptureStatusNone hipStreamCaptureStatusNone
#define gpuStreamBeginCaptureRelaxed(s) hipStreamBeginCapture((s), hipStreamCaptureModeRelaxed)
#define gpuStreamEndCapture hipStreamEndCapture
#define gpuGraphInstantiate(e, g) hipGraphInstantiate((e), (g), nullptr, nullptr, 0)
#define gpuGraphLaunch hipGraphLaunch
#define gpuGraphExecDestroy hipGraphExecDestroy
#define gpuGraphDestroy hipGraphDestroy
#define gpuEventCreateNoTiming(e) hipEventCreateWithFlags((e), hipEventDisableTiming)
#define gpuEventCreate hipEventCreate
#define gpuEventDestroy hipEventDestroy
#define gpuEventRecord hipEventRecord
// A kernel parameter read in place (indexed at run time) instead of copied per thread.
#define GPU_GRID_CONSTANT
#define gpuEventSynchronize hipEventSynchronize
#define gpuEventElapsedTime hipEventElapsedTime
#define GPU_RUNTIME_NAME "HIP"
#define GPU_RUNTIME_VERSION HIP_VERSION

#else
// ---- CUDA --------------------------------------------------------------------------------------
using gpuError_t = cudaError_t;
using gpuStream_t = cudaStream_t;
using gpuEvent_t = cudaEvent_t;
using gpuGraph_t = cudaGraph_t;
using gpuGraphExec_t = cudaGraphExec_t;
using gpuDeviceProp = cudaDeviceProp;
using gpu_half = __half;
using gpu_half2 = __half2;
using gpu_bf16 = __nv_bfloat16;
#define gpuSuccess cudaSuccess
#define gpuErrorNotReady cudaErrorNotReady
#define gpuErrorMemoryAllocation cudaErrorMemoryAllocation
#define gpuErrorInvalidValue cudaErrorInvalidValue
#define gpuErrorInsufficientDriver cudaErrorInsufficientDriver
#define gpuErrorNoDevice cudaErrorNoDevice
#define gpuGetErrorString cudaGetErrorString
#define gpuGetLastError cudaGetLastError
#define gpuDriverGetVersion cudaDriverGetVersion
#define gpuRuntimeGetVersion cudaRuntimeGetVersion
#define gpuGetDeviceCount cudaGetDeviceCount
#define gpuGetDeviceProperties cudaGetDeviceProperties
#define gpuSetDevice cudaSetDevice
#define gpuMemGetInfo cudaMemGetInfo
#define gpuMalloc cudaMalloc
#define gpuFree cudaFree
#define gpuHostAlloc(p, n) cudaHostAlloc((p), (n), cudaHostAllocDefault)
#define gpuFreeHost cudaFreeHost
#define gpuMemcpy cudaMemcpy
#define gpuMemcpyAsync cudaMemcpyAsync
#define gpuMemsetAsync cudaMemsetAsync
#define gpuMemcpyHostToDevice cudaMemcpyHostToDevice
#define gpuMemcpyDeviceToHost cudaMemcpyDeviceToHost
#define gpuMemcpyDeviceToDevice cudaMemcpyDeviceToDevice
#define gpuStreamCreateNonBlocking(s) cudaStreamCreateWithFlags((s), cudaStreamNonBlocking)
#define gpuStreamDestroy cudaStreamDestroy
// Waits for the work of the legacy (null) stream, where synchronous copies run.
#define gpuLegacyStreamSynchronize() cudaStreamSynchronize(cudaStreamLegacy)
#define gpuStreamSynchronize cudaStreamSynchronize
#define gpuStreamIsCapturing cudaStreamIsCapturing
#define gpuStreamCaptureStatus cudaStreamCaptureStatus
#define gpuStreamCaptureStatusNone cudaStreamCaptureStatusNone
#define gpuStreamBeginCaptureRelaxed(s) cudaStreamBeginCapture((s), cudaStreamCaptureModeRelaxed)
#define gpuStreamEndCapture cudaStreamEndCapture
#define gpuGraphInstantiate(e, g) cudaGraphInstantiate((e), (g), 0)
#define gpuGraphLaunch cudaGraphLaunch
#define gpuGraphExecDestroy cudaGraphExecDestroy
#define gpuGraphDestroy cudaGraphDestroy
#define gpuEventCreateNoTiming(e) cudaEventCreateWithFlags((e), cudaEventDisableTiming)
#define gpuEventCreate cudaEventCreate
#define gpuEventDestroy cudaEventDestroy
#define gpuEventRecord cudaEventRecord
// A kernel parameter read in place (indexed at run time) instead of copied per thread.
#define GPU_GRID_CONSTANT __grid_constant__
#define gpuEventSynchronize cudaEventSynchronize
#define gpuEventElapsedTime cudaEventElapsedTime
#define GPU_RUNTIME_NAME "CUDA"
#define GPU_RUNTIME_VERSION CUDART_VERSION
#endif

// ---- kernel launch -----------------------------------------------------------------------------

// Where and how a kernel runs.  `chained` asks for programmatic dependent launch (Hopper and
// newer): the kernel may be scheduled while the previous kernel on the stream drains, which hides
// most of the launch gap between the many small kernels of a decode step.  Every kernel of this
// backend calls gpu_wait_prior_grid() before it touches memory, so chaining never changes results.
struct GpuLaunch {
  dim3 grid;
  dim3 block;
  gpuStream_t stream;
  bool chained;
  unsigned smem = 0;
};

#if defined(__CUDACC__) || defined(__HIPCC__)
template <typename... Params, typename... Args>
inline gpuError_t gpu_launch(const GpuLaunch& l, void (*kernel)(Params...), Args... args) {
  if (l.grid.x == 0 || l.grid.y == 0 || l.grid.z == 0) return gpuSuccess;  // nothing to do
#if defined(RWKVRT_GPU_HIP)
  hipLaunchKernelGGL(kernel, l.grid, l.block, l.smem, l.stream, Params(args)...);
  return hipGetLastError();
#else
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = l.grid;
  cfg.blockDim = l.block;
  cfg.dynamicSmemBytes = l.smem;
  cfg.stream = l.stream;
  cudaLaunchAttribute attr[1];
  if (l.chained) {
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
  }
  return cudaLaunchKernelEx(&cfg, kernel, Params(args)...);
#endif
}

// ---- device helpers ----------------------------------------------------------------------------

constexpr int kWarp = 32;  // lanes of a logical warp

// Waits until the grid this one was chained behind has finished and its writes are visible; a
// no-op when the kernel was launched plainly or the target has no dependent launch.
__device__ __forceinline__ void gpu_wait_prior_grid() {
#if !defined(RWKVRT_GPU_HIP) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Lets the next chained grid start launching (its blocks then wait in gpu_wait_prior_grid).
__device__ __forceinline__ void gpu_allow_next_grid() {
#if !defined(RWKVRT_GPU_HIP) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// The usual prologue of every kernel here.
__device__ __forceinline__ void gpu_kernel_start() {
  gpu_wait_prior_grid();
  gpu_allow_next_grid();
}

// The prologue of a kernel that walks a sequence on few blocks (about one per SM or head).  For a
// long walk (`long_run`, the same in every block) the next chained grid launches only once every
// block has exited (a block that never triggers triggers as it exits): let in at the start, its
// blocks would wait resident beside this grid's for the whole walk, placed on whichever SMs had
// room first.
__device__ __forceinline__ void gpu_walk_start(bool long_run) {
  gpu_wait_prior_grid();
  if (!long_run) gpu_allow_next_grid();
}

__device__ __forceinline__ float gpu_shfl_xor(float v, int mask) {
#if defined(RWKVRT_GPU_HIP)
  return __shfl_xor(v, mask, kWarp);
#else
  return __shfl_xor_sync(0xffffffffu, v, mask, kWarp);
#endif
}

// Sum over the 32 lanes of a logical warp; every lane gets the result.
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int m = kWarp / 2; m > 0; m >>= 1) v += gpu_shfl_xor(v, m);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int m = kWarp / 2; m > 0; m >>= 1) v = fmaxf(v, gpu_shfl_xor(v, m));
  return v;
}

// Read-only load through the non-coherent cache (weights and other inputs no kernel writes).
template <typename T>
__device__ __forceinline__ T gpu_ldg(const T* p) {
#if defined(RWKVRT_GPU_HIP)
  return *p;
#else
  return __ldg(p);
#endif
}

__device__ __forceinline__ float bf16_bits_to_float(uint32_t bits16) {
  return __uint_as_float(bits16 << 16);
}
#endif  // __CUDACC__ || __HIPCC__
