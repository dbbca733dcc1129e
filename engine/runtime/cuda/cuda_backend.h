#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/model_weights.h"
#include "engine/runtime/backend.h"
#include "engine/runtime/cuda/cublaslt_gemm.h"
#include "engine/runtime/cuda/device_memory_pool.h"
#include "engine/runtime/cuda/device_weights.h"
#include "engine/runtime/cuda/prompt_compressor.h"
#include "engine/runtime/cuda/step_plan.h"
#include "engine/runtime/cuda/tiered_decode.h"
#include "kernels/paged_kv_cache.h"

namespace kvserve {

struct CudaBackendOptions {
  // Share of the device memory free at load that the backend reserves, once, for everything:
  // weights, the KV page arena and step activations.
  double gpu_memory_fraction = 0.9;
  // Activation rows whose scratch is set aside at load, before any KV page, so KV pages cannot
  // crowd out an ordinary step; a larger step later takes more where the KV arena left room.
  int reserved_step_rows = 2048;
  // FreeKV: the compute stream waits for each layer's speculative recall before that layer's
  // next attention. Off only in the test that shows the race it prevents.
  bool tiered_recall_wait = true;
  // Decode steps run as a CUDA graph captured per batch shape (vLLM's and SGLang's decode
  // graphs): one launch per step instead of one per kernel, for dense, compressed and tiered
  // (quest/freekv) caches alike. Off: every step launches its kernels one by one (vLLM's
  // --enforce-eager).
  bool cuda_graphs = true;
};

// The production backend: the model in bf16 on one CUDA device. Linear layers are cuBLASLt GEMMs
// (fp32 accumulation; Q/K/V and gate/up fused as in the CPU backend); embedding, residual
// RMSNorm, RoPE, SwiGLU, paged KV append, flash-attention prefill and split-K paged decode are the
// kernels/ launches; the LM head runs on the last token of each chunk that wants logits, which
// come back as fp32 rows. The residual stream is bf16 (what the kernels keep).
//
// KV: the device keeps its own bf16 pages mirroring the ids of the host PagePool the scheduler
// allocates from: host page p <-> device page p, in an arena inside the backend's memory pool
// whose high-water mark follows the largest page id seen (DeviceMemoryPool). The host
// SequenceKvCache keeps the page tables and lengths (its rows stay unwritten), so the scheduler's
// accounting is unchanged. One PagePool feeds a backend at a time (page ids must mean one page),
// with one page size. KV policies: `full`, `snapkv` and `fastkv` (their prompt plans run by
// PromptCompressor on the device after each layer's attention, FastKV's TSP gathering the rows the
// later layers run; each layer keeps its own length, which StepPlan's layer groups follow);
// `quest`, `freekv` and `fastkv_freekv` (its TSP prefill keeping every row, reordered) with the
// full KV in a pinned host tier and a device budget (TieredDecode).
class CudaBackend : public Backend {
 public:
  // Takes host fp32 weights and converts them to bf16 on the device.
  static absl::StatusOr<std::unique_ptr<CudaBackend>> Create(const ModelConfig& config,
                                                             ModelWeights weights,
                                                             CudaBackendOptions options = {});
  // synthetic:NAME's seeded random weights made directly on the device (no host copy): the
  // values MakeSyntheticModel draws for that seed, rounded to bf16.
  static absl::StatusOr<std::unique_ptr<CudaBackend>> CreateSynthetic(
      const std::string& name, uint64_t seed, CudaBackendOptions options = {});
  ~CudaBackend() override;

  std::string_view name() const override { return "cuda"; }
  const ModelConfig& config() const override { return config_; }
  // Benchmarks only (kvserve-gpu-bench's freekv_oracle): tiered decode selects but gathers no
  // selected page, as if each were resident already; the tokens it then generates are not valid.
  void SetRecallOracle(bool on) { tiered_.set_recall_oracle(on); }
  // Tiered sequences holding device state (TieredStatePool rows): what finish, cancel and
  // preemption must give back.
  int tiered_state_rows() const { return tiered_.state_rows_in_use(); }
  // How many decode steps were captured as CUDA graphs, and how many replayed one.
  int64_t graph_captures() const { return graph_captures_; }
  int64_t graph_replays() const { return graph_replays_; }
  absl::Status Supports(const KvPolicyOptions& options) const override;
  absl::Status Execute(std::span<const SequenceChunk> batch, StepOutput* out) override;

  // Pages of `page_size` tokens the KV arena can still reach beside the weights and the step
  // scratch reserved so far: the most a scheduler's device PagePool should hold.
  int64_t kv_capacity_pages(int page_size) const;
  int64_t kv_page_capacity(int page_size) const override { return kv_capacity_pages(page_size); }
  KvDtype kv_dtype() const override { return KvDtype::kBf16; }  // arena and pinned host tier
  bool tiered_budget_from_first_step() const override { return true; }
  // The host tier is the backend's pinned memory: its pool hands out page ids only.
  KvPageStore* AcquireKvPageStore(KvTier tier, const KvPageShape& shape,
                                  int64_t max_pages) override;

 private:
  // One step's activations, carved from the pool's step scratch.
  struct StepBuffers {
    kernels::Bf16 *x = nullptr, *y = nullptr, *delta = nullptr, *qkv = nullptr, *attn = nullptr,
                  *gate_up = nullptr, *ffn = nullptr, *y_logits = nullptr;
    float* logits = nullptr;
    float* decode_workspace = nullptr;
    int32_t* ints = nullptr;
    char* compression = nullptr;  // the prompt compressor's metadata and scratch
  };

  explicit CudaBackend(const ModelConfig& config) : config_(config) {}
  // Everything but the weights' values: pool, stream, weight buffers, RoPE table, cuBLASLt.
  absl::Status Init(const CudaBackendOptions& options, bool own_lm_head);
  absl::Status ValidateChunk(const SequenceChunk& chunk) const;
  // Bytes of step scratch for `rows` activation rows, `logit_rows` logits rows, `ints` metadata
  // int32s and `decode_bytes` of decode workspace; with `base`, also points `out` into it.
  size_t LayoutStep(int rows, int logit_rows, size_t ints, size_t decode_bytes,
                    size_t compress_bytes, char* base, StepBuffers* out) const;
  absl::Status RunLayers(const StepBuffers& b);
  // Runs the step's layers as the graph captured for its shape (capturing it the first time).
  absl::Status RunLayersAsGraph(const StepBuffers& b, size_t ints);
  // Whether this step can run as a graph: dense decode only (see CudaBackendOptions::cuda_graphs).
  bool GraphEligible(std::span<const SequenceChunk> batch) const;
  absl::Status Attention(const StepBuffers& b, int layer);

  ModelConfig config_;
  std::unique_ptr<cuda::DeviceMemoryPool> pool_;
  cudaStream_t stream_ = nullptr;
  cuda::DeviceWeights weights_;
  float* rope_table_ = nullptr;  // [context_length][rope_dim]
  std::unique_ptr<cuda::CublasLtGemm> gemm_;
  int device_ = 0;  // the device current when the backend was made; every step runs there
  int num_sms_ = 1;
  bool decode_kernel_ = false;   // the model's GQA group fits the decode kernel
  kernels::PagedKvLayout kv_{};  // page_size 0 until the first step names it
  cuda::StepPlan plan_;
  AdmittedChunks active_;  // the step's chunks that passed validation and got their pages
  cuda::PromptCompressor compressor_;
  bool compressing_ = false;  // some chunk of this step compresses its prompt
  cuda::TieredDecode tiered_;

  // CUDA graphs of decode steps, by the step's shape: rows, logit rows, metadata size, where
  // the scratch sits, the layer groups' runs and the tiered launches' key (every pointer and size
  // a captured launch holds; the metadata's contents are uploaded before each launch).
  struct GraphShape {
    int rows = 0, logit_rows = 0;
    size_t ints = 0;
    const char* scratch = nullptr;
    std::vector<int64_t> layout;
    auto operator<=>(const GraphShape&) const = default;
  };
  static constexpr size_t kMaxGraphs = 64;
  bool graphs_ = false;      // CudaBackendOptions::cuda_graphs, until a capture fails
  bool graph_step_ = false;  // this step runs as a graph: decode splits planned for the context
  std::map<GraphShape, cudaGraphExec_t> graphs_by_shape_;
  int64_t graph_captures_ = 0, graph_replays_ = 0;
};

}  // namespace kvserve
