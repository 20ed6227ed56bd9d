// RWKV-4 WKV: per channel, log-space stabilised (RWKV-MATH.md §3.1), state aa, bb, pp of C floats
// each in the sequence's state block.  One thread per (sequence, channel), sequential over the
// tokens; consecutive threads take consecutive channels, so every load and store is coalesced.
#include "kernels.h"

namespace rwkvrt::cuda {
namespace {

constexpr int kThreads = 64;  // small blocks spread a single sequence over many SMs

__global__ void __launch_bounds__(kThreads)
    wkv4_kernel(uint64_t B, uint64_t T, uint64_t C, const float* k, const float* v, const float* w,
                const float* u, float* y, void* const* bases, uint64_t offset) {
  gpu_walk_start(T > 1);
  const uint64_t idx = uint64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (idx >= B * C) return;
  const uint64_t b = idx / C, c = idx % C;
  float* st = reinterpret_cast<float*>(static_cast<char*>(bases[b]) + offset);
  float aa = st[c], bb = st[C + c], pp = st[2 * C + c];
  const float wc = w[c], uc = u[c];
  for (uint64_t t = 0; t < T; ++t) {
    const uint64_t o = (b * T + t) * C + c;
    const float kt = k[o], vt = v[o];
    const float ww = uc + kt;
    float q = fmaxf(pp, ww);
    float e1 = expf(pp - q), e2 = expf(ww - q);
    y[o] = (e1 * aa + e2 * vt) / (e1 * bb + e2);
    const float wd = pp + wc;
    q = fmaxf(wd, kt);
    e1 = expf(wd - q);
    e2 = expf(kt - q);
    aa = e1 * aa + e2 * vt;
    bb = e1 * bb + e2;
    pp = q;
  }
  st[c] = aa;
  st[C + c] = bb;
  st[2 * C + c] = pp;
}

}  // namespace

gpuError_t launch_wkv4(const rwkvrt_bk_stream* s, const rwkvrt_bk_wkv4_args& a) {
  if (a.B == 0 || a.T == 0 || a.C == 0) return gpuSuccess;
  const GpuLaunch l =
      launch_on(s, dim3(unsigned((a.B * a.C + kThreads - 1) / kThreads)), dim3(kThreads));
  return gpu_launch(l, wkv4_kernel, a.B, a.T, a.C, a.k, a.v, a.w, a.u, a.y, a.state.bases,
                    a.state.offset);
}

}  // namespace rwkvrt::cuda
