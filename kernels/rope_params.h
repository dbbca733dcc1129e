#pragma once

#include <cstdint>

#include "kernels/bf16.h"

namespace kvserve::kernels {

// Which channel pairs RoPE rotates within a head (engine/model's RopeStyle).
enum class RopePairs {
  kAdjacent,   // (2i, 2i+1): llama2.c and GGUF `llama`
  kHalfSplit,  // (i, i + rope_dim / 2): Hugging Face / NeoX
};

// Rotates, in place, every Q head and K head of `rows` token rows by each row's position. The
// first `rope_dim` channels of a head rotate; the rest stay.
struct RopeParams {
  Bf16* q = nullptr;  // [rows][q_row_stride]
  int q_row_stride = 0;
  int n_heads = 0;
  Bf16* k = nullptr;  // [rows][k_row_stride]
  int k_row_stride = 0;
  int n_kv_heads = 0;
  const int32_t* positions = nullptr;  // [rows]; a row outside [0, max_positions) stays as it is
  int rows = 0;
  const float* table = nullptr;  // BuildRopeTable's output
  int max_positions = 0;
  int head_dim = 0;
  int rope_dim = 0;
  RopePairs pairs = RopePairs::kAdjacent;
};

// The rotation table: for each position, rope_dim / 2 cosines then rope_dim / 2 sines, so one
// position's angles are one row of `rope_dim` floats. Frequencies in fp32 and angles in double,
// as the CPU backend's RopeTables computes them. `table` holds max_positions * rope_dim floats.
void BuildRopeTable(int max_positions, int rope_dim, float theta, float* table);

}  // namespace kvserve::kernels
