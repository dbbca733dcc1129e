#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/model_weights.h"
#include "engine/runtime/backend.h"
#include "engine/runtime/cpu/linear_weights.h"
#include "engine/runtime/cpu/thread_pool.h"

namespace kvserve {

// The CPU backend: linear layers on the weights as loaded (fp32 through OpenBLAS, the reference;
// quantized, F16 and BF16 matrices through the int8 / fp32 dot kernels of kernels/cpu and fp32
// panels for prefill GEMMs), exact softmax attention in fp32 over KV stored in fp16 (or as asked).
class CpuBackend : public Backend {
 public:
  // Takes the weights; fuses Q/K/V and gate/up into single matrices so each is one GEMM.
  // `threads` <= 0: one per hardware thread.
  static absl::StatusOr<std::unique_ptr<CpuBackend>> Create(const ModelConfig& config,
                                                            ModelWeights weights, int threads = 0);

  std::string_view name() const override { return "cpu"; }
  // Bytes the weight matrices and norms occupy in memory.
  size_t weight_bytes() const;
  // The instruction set the dot kernels run with ("avx2", "avx512vnni", "scalar").
  std::string_view kernel_isa() const;
  const ModelConfig& config() const override { return config_; }
  absl::Status Execute(std::span<const SequenceChunk> batch, StepOutput* out) override;
  // fp16 by default: half of fp32's memory and of the bytes a decode step streams, attention
  // still computed in fp32. Any of f32, f16, bf16.
  KvDtype kv_dtype() const override { return kv_dtype_; }
  absl::Status SetKvDtype(KvDtype dtype) override;

 private:
  struct Layer {
    std::vector<float> attn_norm, ffn_norm;
    cpu::LinearWeights wqkv, wo, w_gate_up, w_down;
  };
  // Per-step activations, grown to the largest step seen and reused.
  struct Scratch {
    std::vector<float> x, xn, qkv, q, attn, ffn, gate_up, rope_cos, rope_sin;
    std::vector<std::vector<float>> scores;  // one per pool worker
    std::vector<int32_t> positions;
    // A compressing chunk's keys (values beside them, unused) and its window scores.
    std::vector<float> window_keys, window_values, window_scores;
  };

  CpuBackend(const ModelConfig& config, ModelWeights weights, int threads);
  absl::Status ValidateChunk(const SequenceChunk& chunk) const;
  // Ends chunk `chunk` of the step (the first failure stands); its rows leave after this layer.
  void Fail(size_t chunk, absl::Status status);
  // Appends every chunk's K/V; computes attention for all rows, or with `logit_rows_only` just the
  // last row of each chunk that wants logits (the last layer), written compactly.
  absl::Status Attention(std::span<const SequenceChunk> batch, int layer, bool logit_rows_only);
  // After `layer`'s attention, runs each whole-prompt chunk's compression plan: window scores,
  // selection (SelectPromptRows), the cache compacted to the kept rows at once, and a TSP's rows
  // left in propagate_ for PropagateRows. True when some chunk's rows change (TSP or a failure).
  // Adds chunk `b`'s decode page lists of `layer` (the policy's when it attends sparsely); a list
  // the cache cannot serve fails the chunk.
  void PlanDecodePages(const SequenceChunk& chunk, size_t b, int layer, const float* q);
  // KV head `kv_head`'s rows at `layer` that chunk `b` attends over.
  int AttendedRows(const SequenceChunk& chunk, size_t b, int layer, int kv_head) const;
  bool RunPromptPlans(std::span<const SequenceChunk> batch, int layer);
  // Gathers the activation rows (hidden state, positions, RoPE tables) of chunks with a pending
  // propagate down to those rows, drops failed chunks' rows, moving the other chunks' rows up
  // behind them; updates chunk_n_ and returns the step's new row count.
  int PropagateRows(std::span<const SequenceChunk> batch);

  ModelConfig config_;
  KvDtype kv_dtype_ = KvDtype::kF16;
  cpu::LinearWeights token_embedding_, lm_head_;  // lm_head_ empty (0 rows) when tied
  std::vector<float> final_norm_;
  std::vector<Layer> layers_;
  cpu::ThreadPool pool_;
  cpu::LinearRunner linear_{pool_};
  Scratch s_;
  AdmittedChunks active_;                   // the step's chunks that passed validation
  std::vector<absl::Status> chunk_status_;  // per active chunk
  std::vector<std::vector<PromptLayerScores>> recorded_;  // per active chunk, when its plan asks
  std::vector<std::vector<KvRetention>> retained_;        // per active chunk: its compression
  std::vector<int> chunk_rows_;  // first activation row of each chunk in the step
  // Rows each chunk still carries through the layers: its tokens, until a TSP layer drops some.
  std::vector<int> chunk_n_;
  std::vector<std::vector<int32_t>> propagate_;  // per chunk, the rows TSP keeps; empty = all
  struct AttentionTask {
    int chunk, kv_head, block;
    int q_row, out_row, n;  // first query row, first output row, queries in the task's view
  };
  std::vector<AttentionTask> attention_tasks_;
  // Per chunk: whether its policy took the decode hooks this layer, whether it attends over its
  // decode page lists (quest/freekv), and those lists (the plan's, else own_pages_).
  std::vector<char> decode_hooked_;
  std::vector<char> sparse_;
  std::vector<DecodePageLists*> pages_;
  std::vector<DecodePageLists> own_pages_;
};

}  // namespace kvserve
