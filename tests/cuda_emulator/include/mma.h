#pragma once

// nvcuda::wmma for 16x16x16 tiles, executed by a warp of emulated threads. Each lane holds its
// own eighth of a fragment (an order the API does not reveal, as on a GPU), every *_sync call
// first waits for the whole warp, and mma_sync exchanges the operands through warp scratch.
// Loads and stores check wmma's rules: 256-bit aligned pointers, ldm a multiple of 16 bytes.

#include <cstdint>
#include <source_location>
#include <type_traits>

#include "cuda_bf16.h"
#include "cuda_emulator/device_builtins.h"

namespace nvcuda::wmma {

struct matrix_a;
struct matrix_b;
struct accumulator;
struct row_major;
struct col_major;

enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int m, int n, int k, typename T, typename Layout = void>
class fragment {
  static_assert(m == 16 && n == 16 && k == 16, "the emulator has 16x16x16 tiles only");
  static_assert(std::is_same_v<Use, accumulator> ? std::is_same_v<T, float>
                                                 : std::is_same_v<T, __nv_bfloat16>,
                "the emulator has bf16 operands and float accumulators only");

 public:
  static constexpr int kRows = std::is_same_v<Use, matrix_b> ? k : m;
  static constexpr int kCols = std::is_same_v<Use, matrix_a> ? k : n;
  static constexpr int num_elements = kRows * kCols / 32;
  T x[num_elements];
};

namespace detail {

inline float AsFloat(float v) { return v; }
inline float AsFloat(__nv_bfloat16 v) { return __bfloat162float(v); }

// Lane `lane`'s element i sits at this row and column of the tile.
template <typename Frag>
int RowOf(int lane, int i) {
  return (lane * Frag::num_elements + i) / Frag::kCols;
}
template <typename Frag>
int ColOf(int lane, int i) {
  return (lane * Frag::num_elements + i) % Frag::kCols;
}

template <typename T>
void CheckOperand(const void* p, unsigned ldm, const char* what) {
  if (reinterpret_cast<uintptr_t>(p) % 32 != 0) ::kvserve::cuda_emulator::Fail(what);
  if ((ldm * sizeof(T)) % 16 != 0) ::kvserve::cuda_emulator::Fail(what);
}

// Element (row, col) of a matrix at `p` with leading dimension `ldm`.
inline size_t At(int row, int col, unsigned ldm, bool row_major) {
  return row_major ? static_cast<size_t>(row) * ldm + col : static_cast<size_t>(col) * ldm + row;
}

}  // namespace detail

template <typename Use, int m, int n, int k, typename T, typename Layout>
void fill_fragment(fragment<Use, m, n, k, T, Layout>& f, const T& value) {
  for (T& e : f.x) e = value;
}

// matrix_a and matrix_b, whose layout is part of the type.
template <typename Use, typename T, typename Layout>
void load_matrix_sync(fragment<Use, 16, 16, 16, T, Layout>& f, const T* p, unsigned ldm,
                      const std::source_location& site = std::source_location::current()) {
  using Frag = fragment<Use, 16, 16, 16, T, Layout>;
  static_assert(!std::is_same_v<Use, accumulator>, "an accumulator load names its layout");
  ::kvserve::cuda_emulator::Arrive(::kvserve::cuda_emulator::Collective::kWmma, site);
  detail::CheckOperand<T>(p, ldm, "wmma::load_matrix_sync: pointer or ldm breaks wmma's rules");
  const int lane = ::kvserve::cuda_emulator::LaneId();
  for (int i = 0; i < Frag::num_elements; ++i) {
    f.x[i] = p[detail::At(detail::RowOf<Frag>(lane, i), detail::ColOf<Frag>(lane, i), ldm,
                          std::is_same_v<Layout, row_major>)];
  }
}

inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float>& f, const float* p,
                             unsigned ldm, layout_t layout,
                             const std::source_location& site = std::source_location::current()) {
  using Frag = fragment<accumulator, 16, 16, 16, float>;
  ::kvserve::cuda_emulator::Arrive(::kvserve::cuda_emulator::Collective::kWmma, site);
  detail::CheckOperand<float>(p, ldm, "wmma::load_matrix_sync: pointer or ldm breaks wmma's rules");
  const int lane = ::kvserve::cuda_emulator::LaneId();
  for (int i = 0; i < Frag::num_elements; ++i) {
    f.x[i] = p[detail::At(detail::RowOf<Frag>(lane, i), detail::ColOf<Frag>(lane, i), ldm,
                          layout == mem_row_major)];
  }
}

inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& f,
                              unsigned ldm, layout_t layout,
                              const std::source_location& site = std::source_location::current()) {
  using Frag = fragment<accumulator, 16, 16, 16, float>;
  ::kvserve::cuda_emulator::Arrive(::kvserve::cuda_emulator::Collective::kWmma, site);
  detail::CheckOperand<float>(p, ldm,
                              "wmma::store_matrix_sync: pointer or ldm breaks wmma's rules");
  const int lane = ::kvserve::cuda_emulator::LaneId();
  for (int i = 0; i < Frag::num_elements; ++i) {
    p[detail::At(detail::RowOf<Frag>(lane, i), detail::ColOf<Frag>(lane, i), ldm,
                 layout == mem_row_major)] = f.x[i];
  }
}

// D = A B + C in float; the lanes first publish their parts of A and B to the warp.
template <typename LayoutA, typename LayoutB>
void mma_sync(fragment<accumulator, 16, 16, 16, float>& d,
              const fragment<matrix_a, 16, 16, 16, __nv_bfloat16, LayoutA>& a,
              const fragment<matrix_b, 16, 16, 16, __nv_bfloat16, LayoutB>& b,
              const fragment<accumulator, 16, 16, 16, float>& c,
              const std::source_location& site = std::source_location::current()) {
  using FragA = fragment<matrix_a, 16, 16, 16, __nv_bfloat16, LayoutA>;
  using FragB = fragment<matrix_b, 16, 16, 16, __nv_bfloat16, LayoutB>;
  using FragC = fragment<accumulator, 16, 16, 16, float>;
  namespace emu = ::kvserve::cuda_emulator;
  emu::Arrive(emu::Collective::kWmma, site);
  float* a_tile = emu::WarpMatrixScratch();  // [16][16] row-major
  float* b_tile = a_tile + 256;
  const int lane = emu::LaneId();
  for (int i = 0; i < FragA::num_elements; ++i) {
    a_tile[detail::RowOf<FragA>(lane, i) * 16 + detail::ColOf<FragA>(lane, i)] =
        detail::AsFloat(a.x[i]);
  }
  for (int i = 0; i < FragB::num_elements; ++i) {
    b_tile[detail::RowOf<FragB>(lane, i) * 16 + detail::ColOf<FragB>(lane, i)] =
        detail::AsFloat(b.x[i]);
  }
  emu::Arrive(emu::Collective::kWmma, site);
  FragC out;
  for (int i = 0; i < FragC::num_elements; ++i) {
    const int row = detail::RowOf<FragC>(lane, i);
    const int col = detail::ColOf<FragC>(lane, i);
    float sum = c.x[i];
    for (int kk = 0; kk < 16; ++kk) sum += a_tile[row * 16 + kk] * b_tile[kk * 16 + col];
    out.x[i] = sum;
  }
  d = out;
}

}  // namespace nvcuda::wmma
