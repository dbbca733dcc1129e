#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "engine/kv/sequence_kv_cache.h"
#include "engine/runtime/cpu/thread_pool.h"

namespace kvserve::cpu {

// y[m][n] = x[m][k] * w[n][k]^T (+ y when accumulate): every linear layer, weights row-major
// [out][in]. Output columns are split across the pool. Few rows (decode) stream each weight row
// once through dot products; many rows (prefill) use single-threaded OpenBLAS sgemm per slice.
void Linear(ThreadPool& pool, const float* x, const float* w, float* y, int m, int n, int k,
            bool accumulate = false);

// out[i] = x[i] * weight / rms(x[i]) for each of `rows` rows of `dim`.
void RmsNorm(ThreadPool& pool, const float* x, const float* weight, float* out, int rows, int dim,
             float eps);

// Per-token rotation tables: cos/sin[t][rope_dim / 2] for each position.
void RopeTables(std::span<const int32_t> positions, int rope_dim, float theta, float* cos_out,
                float* sin_out);

// Rotates `n_heads` heads of `head_dim` in each of `rows` rows (row stride `stride`) in place.
// Adjacent pairs (2i, 2i+1) when `adjacent_pairs`, else halves (i, i + rope_dim / 2).
void ApplyRope(float* x, int rows, int stride, int n_heads, int head_dim, int rope_dim,
               const float* cos_table, const float* sin_table, bool adjacent_pairs);

// out[r][i] = silu(gate_up[r][i]) * gate_up[r][ffn + i]; gate_up is [rows][2 * ffn].
void SiluMul(ThreadPool& pool, const float* gate_up, float* out, int rows, int ffn);

// p[j] = softmax_j(q · k_j * scale) over the first `visible` rows of k ([visible][d]), computed
// stably in fp32: the probabilities decode attention and window scoring both need.
void AttentionProbabilities(const float* q, const float* k, int visible, int d, float scale,
                            float* p);

// Causal GQA attention of one sequence's `n` new queries over its cache of `cache_len` tokens,
// the new ones last. q/out: [n][n_heads * head_dim]; keys/values: the task's KV head's rows,
// [cache_len][head_dim] (head-major cache).
struct AttentionShape {
  int n_heads;
  int n_kv_heads;
  int head_dim;
};
struct AttentionInputs {
  const float* q;
  const float* keys;
  const float* values;
  float* out;
  int n;
  int cache_len;
  AttentionShape shape;
};
// Query rows are processed in blocks (bounding the score matrix at long context); callers split
// work into (KV head, block) tasks.
int AttentionQueryBlocks(int n);
// Cache rows (from the first) that block `block` of `n` new queries attends to.
int AttentionKeysNeeded(int n, int cache_len, int block);
// Scratch one task needs, in floats.
size_t AttentionScratchFloats(int n, int cache_len, const AttentionShape& shape);
// Computes the query heads that share KV head `kv_head` for the rows of query block `block`: one
// GEMM over the whole group, so K and V are read once per group rather than once per query head.
void CausalAttention(const AttentionInputs& in, int kv_head, int block, float* scratch);

// Whether `n` new queries attend by dot products (one task, no GEMM): decode.
bool AttendsDirectly(int n);
// CausalAttention for AttendsDirectly(n) over K/V rows read where they lie, `spans` in cache order
// (in.keys and in.values unused), each row converted to fp32 once for the group's query heads: the
// same arithmetic in the same order as over gathered rows, without the copy, which cost a decode
// step a second pass over the cache.
void DirectAttention(const AttentionInputs& in, std::span<const KvRowSpan> spans, int kv_head,
                     float* scratch);

}  // namespace kvserve::cpu
