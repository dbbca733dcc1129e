// The emulator's cuBLASLt: descriptors as plain records, the matmul through OpenBLAS in fp32.

#include <cblas.h>

#include <bit>
#include <cstring>
#include <vector>

#include "cublasLt.h"
#include "cuda_bf16.h"
#include "device_memory.h"
#include "stream_scheduler.h"

struct cublasLtContext {};

struct cublasLtMatmulDescOpaque_t {
  cublasOperation_t trans_a = CUBLAS_OP_N;
  cublasOperation_t trans_b = CUBLAS_OP_N;
};

struct cublasLtMatrixLayoutOpaque_t {
  cudaDataType_t type;
  uint64_t rows;
  uint64_t cols;
  int64_t ld;  // column-major: elements between the starts of two columns
};

struct cublasLtMatmulPreferenceOpaque_t {
  uint64_t max_workspace_bytes = 0;
};

namespace {

size_t ElementBytes(cudaDataType_t type) { return type == CUDA_R_16BF ? 2 : 4; }

// Elements a column-major layout spans, from its first to its last.
size_t SpanElements(const cublasLtMatrixLayoutOpaque_t& l) {
  return l.rows == 0 || l.cols == 0 ? 0 : static_cast<size_t>(l.ld) * (l.cols - 1) + l.rows;
}

// The matrix as dense fp32, column-major with ld = rows; a column at a time, which vectorizes.
std::vector<float> ToFloat(const void* p, const cublasLtMatrixLayoutOpaque_t& l) {
  std::vector<float> out(l.rows * l.cols);
  for (uint64_t c = 0; c < l.cols; ++c) {
    float* dst = out.data() + c * l.rows;
    if (l.type == CUDA_R_16BF) {
      const uint16_t* src = static_cast<const uint16_t*>(p) + c * l.ld;
      for (uint64_t r = 0; r < l.rows; ++r) dst[r] = std::bit_cast<float>(uint32_t{src[r]} << 16);
    } else {
      std::memcpy(dst, static_cast<const float*>(p) + c * l.ld, l.rows * sizeof(float));
    }
  }
  return out;
}

void Store(const std::vector<float>& dense, void* p, const cublasLtMatrixLayoutOpaque_t& l) {
  for (uint64_t c = 0; c < l.cols; ++c) {
    const float* src = dense.data() + c * l.rows;
    if (l.type == CUDA_R_16BF) {
      auto* dst = static_cast<__nv_bfloat16*>(p) + c * l.ld;
      for (uint64_t r = 0; r < l.rows; ++r) dst[r] = __float2bfloat16_rn(src[r]);
    } else {
      std::memcpy(static_cast<float*>(p) + c * l.ld, src, l.rows * sizeof(float));
    }
  }
}

// Sum of bf16 a[p] times b[p]: eight partial sums, which the compiler keeps in one vector.
float DotBf16(const uint16_t* a, const float* b, int k) {
  float partial[8] = {};
  int p = 0;
  for (; p + 8 <= k; p += 8) {
    for (int j = 0; j < 8; ++j)
      partial[j] += std::bit_cast<float>(uint32_t{a[p + j]} << 16) * b[p + j];
  }
  float sum = 0.0f;
  for (; p < k; ++p) sum += std::bit_cast<float>(uint32_t{a[p]} << 16) * b[p];
  for (float v : partial) sum += v;
  return sum;
}

bool InDeviceMemory(const void* p, const cublasLtMatrixLayoutOpaque_t& l) {
  const size_t bytes = SpanElements(l) * ElementBytes(l.type);
  return bytes == 0 || kvserve::cuda_emulator::DeviceMemory::Contains(p, bytes);
}

// The handles' and descriptors' creation and destruction.
template <typename T>
cublasStatus_t New(T** out) {
  if (out == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *out = new T{};
  return CUBLAS_STATUS_SUCCESS;
}

template <typename T>
cublasStatus_t Delete(T* object) {
  delete object;
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) { return New(handle); }
cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) { return Delete(handle); }

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc, cublasComputeType_t compute,
                                        cudaDataType_t scale_type) {
  if (compute != CUBLAS_COMPUTE_32F || scale_type != CUDA_R_32F) {
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  return New(desc);
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) { return Delete(desc); }

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc,
                                              cublasLtMatmulDescAttributes_t attr, const void* buf,
                                              size_t size) {
  if (desc == nullptr || buf == nullptr || size != sizeof(cublasOperation_t)) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  cublasOperation_t op;
  std::memcpy(&op, buf, sizeof op);
  if (op != CUBLAS_OP_N && op != CUBLAS_OP_T) return CUBLAS_STATUS_INVALID_VALUE;
  if (attr == CUBLASLT_MATMUL_DESC_TRANSA) {
    desc->trans_a = op;
  } else if (attr == CUBLASLT_MATMUL_DESC_TRANSB) {
    desc->trans_b = op;
  } else {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType_t type,
                                          uint64_t rows, uint64_t cols, int64_t ld) {
  if (layout == nullptr || ld < static_cast<int64_t>(rows)) return CUBLAS_STATUS_INVALID_VALUE;
  if (type != CUDA_R_16BF && type != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
  *layout = new cublasLtMatrixLayoutOpaque_t{type, rows, cols, ld};
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) { return Delete(layout); }

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* pref) {
  return New(pref);
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
  return Delete(pref);
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr,
                                                    const void* buf, size_t size) {
  if (pref == nullptr || buf == nullptr || attr != CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES ||
      size != sizeof(uint64_t)) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  std::memcpy(&pref->max_workspace_bytes, buf, sizeof(uint64_t));
  return CUBLAS_STATUS_SUCCESS;
}

namespace {

// The shapes agree: op(A) is m x k, op(B) k x n, C and D m x n.
bool ShapesAgree(const cublasLtMatmulDescOpaque_t& desc, const cublasLtMatrixLayoutOpaque_t& a,
                 const cublasLtMatrixLayoutOpaque_t& b, const cublasLtMatrixLayoutOpaque_t& c,
                 const cublasLtMatrixLayoutOpaque_t& d) {
  const uint64_t m = desc.trans_a == CUBLAS_OP_N ? a.rows : a.cols;
  const uint64_t k = desc.trans_a == CUBLAS_OP_N ? a.cols : a.rows;
  const uint64_t kb = desc.trans_b == CUBLAS_OP_N ? b.rows : b.cols;
  const uint64_t n = desc.trans_b == CUBLAS_OP_N ? b.cols : b.rows;
  return k == kb && c.rows == m && c.cols == n && d.rows == m && d.cols == n && a.type == b.type &&
         c.type == d.type;
}

}  // namespace

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                              cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                              cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                              cublasLtMatmulPreference_t pref, int requested,
                                              cublasLtMatmulHeuristicResult_t* results,
                                              int* returned) {
  if (handle == nullptr || desc == nullptr || a == nullptr || b == nullptr || c == nullptr ||
      d == nullptr || pref == nullptr || requested < 1 || results == nullptr ||
      returned == nullptr) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  *returned = 0;
  if (!ShapesAgree(*desc, *a, *b, *c, *d)) return CUBLAS_STATUS_INVALID_VALUE;
  results[0] = cublasLtMatmulHeuristicResult_t{};
  results[0].state = CUBLAS_STATUS_SUCCESS;
  results[0].wavesCount = 1.0f;
  *returned = 1;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha,
                              const void* a, cublasLtMatrixLayout_t a_layout, const void* b,
                              cublasLtMatrixLayout_t b_layout, const void* beta, const void* c,
                              cublasLtMatrixLayout_t c_layout, void* d,
                              cublasLtMatrixLayout_t d_layout, const cublasLtMatmulAlgo_t* algo,
                              void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  if (handle == nullptr || desc == nullptr || alpha == nullptr || beta == nullptr ||
      a_layout == nullptr || b_layout == nullptr || c_layout == nullptr || d_layout == nullptr ||
      !ShapesAgree(*desc, *a_layout, *b_layout, *c_layout, *d_layout)) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  // Every operand must lie inside one device allocation, as on the device.
  if (!InDeviceMemory(a, *a_layout) || !InDeviceMemory(b, *b_layout) ||
      !InDeviceMemory(d, *d_layout) || !InDeviceMemory(c, *c_layout)) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  // Host scalars are read at the call, as cuBLASLt's host pointer mode does; the product runs as
  // stream work (a captured graph replays it with these operands).
  float alpha_value, beta_value;
  std::memcpy(&alpha_value, alpha, sizeof(float));
  std::memcpy(&beta_value, beta, sizeof(float));
  const cublasLtMatmulDescOpaque_t op = *desc;
  const cublasLtMatrixLayoutOpaque_t al = *a_layout, bl = *b_layout, cl = *c_layout, dl = *d_layout;
  auto product = [=]() -> cudaError_t {
    const auto* desc = &op;
    const auto* a_layout = &al;
    const auto* b_layout = &bl;
    const auto* c_layout = &cl;
    const int m = static_cast<int>(dl.rows);
    const int n = static_cast<int>(dl.cols);
    const int k = static_cast<int>(desc->trans_a == CUBLAS_OP_N ? a_layout->cols : a_layout->rows);
    if (m == 0 || n == 0) return cudaSuccess;
    if (k == 0) {  // D = beta C, which OpenBLAS's argument checks would refuse
      std::vector<float> df = ToFloat(c, *c_layout);
      for (float& v : df) v = beta_value != 0.0f ? v * beta_value : 0.0f;
      Store(df, d, dl);
      return cudaSuccess;
    }
    const std::vector<float> bf = ToFloat(b, *b_layout);
    std::vector<float> df = beta_value != 0.0f ? ToFloat(c, *c_layout) : std::vector<float>(m * n);
    // A few columns against a transposed bf16 A (a decode step's GEMMs): dot products straight from
    // A, whose conversion to fp32 would cost more than the products.
    if (n <= 16 && desc->trans_a == CUBLAS_OP_T && desc->trans_b == CUBLAS_OP_N &&
        a_layout->type == CUDA_R_16BF) {
      const auto* a_bits = static_cast<const uint16_t*>(a);
      for (int j = 0; j < n; ++j) {
        const float* b_col = bf.data() + static_cast<size_t>(j) * b_layout->rows;
        for (int i = 0; i < m; ++i) {
          float& out = df[static_cast<size_t>(j) * m + i];
          out = alpha_value * DotBf16(a_bits + static_cast<size_t>(i) * a_layout->ld, b_col, k) +
                (beta_value != 0.0f ? beta_value * out : 0.0f);
        }
      }
      Store(df, d, dl);
      return cudaSuccess;
    }
    const std::vector<float> af = ToFloat(a, *a_layout);
    cblas_sgemm(CblasColMajor, desc->trans_a == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                desc->trans_b == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, alpha_value,
                af.data(), static_cast<int>(a_layout->rows), bf.data(),
                static_cast<int>(b_layout->rows), beta_value, df.data(), m);
    Store(df, d, dl);
    return cudaSuccess;
  };
  return kvserve::cuda_emulator::Enqueue(stream, product) == cudaSuccess
             ? CUBLAS_STATUS_SUCCESS
             : CUBLAS_STATUS_EXECUTION_FAILED;
}
