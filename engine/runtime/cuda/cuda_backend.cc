#include "engine/runtime/cuda/cuda_backend.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/model/synthetic_model.h"
#include "engine/runtime/cuda/cuda_status.h"
#include "engine/runtime/cuda/prompt_compressor.h"
#include "engine/runtime/cuda/row_gather.h"
#include "engine/runtime/cuda/synthetic_weights.h"
#include "kernels/ceil_div.h"
#include "kernels/decode_attention.h"
#include "kernels/decode_split_plan.h"
#include "kernels/embedding.h"
#include "kernels/kv_append.h"
#include "kernels/prefill_attention.h"
#include "kernels/residual_rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "spdlog/spdlog.h"

namespace kvserve {
namespace {

using cuda::CudaStatus;
using kernels::Bf16;

// Logits rows the load-time scratch reservation plans for (a decode batch of this many).
constexpr int kReservedLogitRows = 64;
// Most query heads per KV head the prefill kernel takes.
constexpr int kPrefillMaxGroup = 64;

// What the kernels need of the model's shape; Unimplemented naming the first thing they lack.
absl::Status CheckKernelShapes(const ModelConfig& c) {
  auto unsupported = [](absl::string_view what) {
    return absl::UnimplementedError(absl::StrCat("cuda backend: ", what));
  };
  if (c.head_dim != 64 && c.head_dim != 128) {
    return unsupported(
        absl::StrCat("head_dim ", c.head_dim, " (the attention kernels take 64 or 128)"));
  }
  if (c.group_size() > kPrefillMaxGroup) {
    return unsupported(
        absl::StrCat(c.group_size(), " query heads per KV head (at most ", kPrefillMaxGroup, ")"));
  }
  if (c.rope_dim % 2 != 0 || c.rope_dim > c.head_dim) {
    return unsupported(absl::StrCat("rope_dim ", c.rope_dim));
  }
  return absl::OkStatus();
}

template <typename T>
T* Carve(char* base, size_t* offset, size_t count) {
  T* at = base == nullptr ? nullptr : reinterpret_cast<T*>(base + *offset);
  *offset += cuda::AlignDeviceBytes(count * sizeof(T));
  return at;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::Create(const ModelConfig& config,
                                                                 ModelWeights weights,
                                                                 CudaBackendOptions options) {
  KVSERVE_RETURN_IF_ERROR(config.Validate());
  KVSERVE_RETURN_IF_ERROR(weights.CheckShapes(config));
  std::unique_ptr<CudaBackend> b(new CudaBackend(config));
  KVSERVE_RETURN_IF_ERROR(b->Init(options, /*own_lm_head=*/!weights.lm_head.empty()));
  KVSERVE_RETURN_IF_ERROR(cuda::UploadWeights(std::move(weights), config, b->weights_));
  return b;
}

absl::StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::CreateSynthetic(
    const std::string& name, uint64_t seed, CudaBackendOptions options) {
  auto config = SyntheticModelConfig(name);
  if (!config.ok()) return config.status();
  std::unique_ptr<CudaBackend> b(new CudaBackend(*config));
  KVSERVE_RETURN_IF_ERROR(b->Init(options, /*own_lm_head=*/!config->tied_embeddings));
  KVSERVE_RETURN_IF_ERROR(cuda::FillSyntheticWeights(*config, seed, b->weights_, b->stream_));
  return b;
}

CudaBackend::~CudaBackend() {
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  for (auto& [shape, exec] : graphs_by_shape_) cudaGraphExecDestroy(exec);
  gemm_.reset();
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

absl::Status CudaBackend::Init(const CudaBackendOptions& options, bool own_lm_head) {
  const ModelConfig& c = config_;
  KVSERVE_RETURN_IF_ERROR(CheckKernelShapes(c));
  decode_kernel_ = c.group_size() <= kernels::kDecodeMaxGroup;
  graphs_ = options.cuda_graphs;
  KVSERVE_RETURN_IF_ERROR(CudaStatus(cudaGetDevice(&device_), "cudaGetDevice"));
  KVSERVE_RETURN_IF_ERROR(CudaStatus(
      cudaDeviceGetAttribute(&num_sms_, cudaDevAttrMultiProcessorCount, device_), "SM count"));
  KVSERVE_RETURN_IF_ERROR(
      CudaStatus(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream"));
  auto pool = cuda::DeviceMemoryPool::Create(options.gpu_memory_fraction);
  if (!pool.ok()) return pool.status();
  pool_ = *std::move(pool);

  auto weights = cuda::AllocateDeviceWeights(c, own_lm_head, *pool_);
  if (!weights.ok()) return weights.status();
  weights_ = *std::move(weights);

  // RoPE angles for every position the model takes, computed once as the CPU backend does.
  std::vector<float> table(static_cast<size_t>(c.context_length) * c.rope_dim);
  kernels::BuildRopeTable(c.context_length, c.rope_dim, c.rope_theta, table.data());
  auto rope = pool_->TakePersistent(table.size() * sizeof(float), "RoPE table");
  if (!rope.ok()) return rope.status();
  rope_table_ = static_cast<float*>(*rope);
  KVSERVE_RETURN_IF_ERROR(CudaStatus(
      cudaMemcpy(rope_table_, table.data(), table.size() * sizeof(float), cudaMemcpyHostToDevice),
      "RoPE table"));

  auto workspace = pool_->TakePersistent(cuda::kCublasLtWorkspaceBytes, "cuBLASLt workspace");
  if (!workspace.ok()) return workspace.status();
  auto gemm = cuda::CublasLtGemm::Create(*workspace, cuda::kCublasLtWorkspaceBytes);
  if (!gemm.ok()) return gemm.status();
  gemm_ = *std::move(gemm);

  // Set the ordinary step's scratch aside now, before KV pages can take the room.
  const int rows = std::max(1, options.reserved_step_rows);
  const size_t decode_bytes = kernels::MaxDecodeWorkspaceBytes(
      kReservedLogitRows, c.n_heads, c.n_kv_heads, c.head_dim, c.context_length, num_sms_);
  const size_t bytes = LayoutStep(rows, std::min(rows, kReservedLogitRows), 4 * size_t(rows),
                                  decode_bytes, 0, nullptr, nullptr);
  if (auto s = pool_->StepScratch(bytes); !s.ok()) return s.status();
  return tiered_.Init(c, num_sms_, options.tiered_recall_wait);
}

KvPageStore* CudaBackend::AcquireKvPageStore(KvTier tier, const KvPageShape& shape,
                                             int64_t max_pages) {
  if (tier == KvTier::kHost) {
    tiered_.host_tier().set_max_pages(max_pages);
    return nullptr;
  }
  return Backend::AcquireKvPageStore(tier, shape, max_pages);
}

int64_t CudaBackend::kv_capacity_pages(int page_size) const {
  const kernels::PagedKvLayout layout{config_.n_kv_heads, page_size, config_.head_dim};
  return static_cast<int64_t>(pool_->kv_room() / (layout.PageElements() * sizeof(Bf16)));
}

size_t CudaBackend::LayoutStep(int rows, int logit_rows, size_t ints, size_t decode_bytes,
                               size_t compress_bytes, char* base, StepBuffers* out) const {
  const ModelConfig& c = config_;
  const size_t n = rows;
  const size_t qkv_dim = c.q_dim() + 2 * c.kv_dim();
  StepBuffers b;
  size_t at = 0;
  b.x = Carve<Bf16>(base, &at, n * c.dim);
  b.y = Carve<Bf16>(base, &at, n * c.dim);
  b.delta = Carve<Bf16>(base, &at, n * c.dim);
  b.qkv = Carve<Bf16>(base, &at, n * qkv_dim);
  b.attn = Carve<Bf16>(base, &at, n * c.q_dim());
  b.gate_up = Carve<Bf16>(base, &at, n * 2 * c.ffn_dim);
  b.ffn = Carve<Bf16>(base, &at, n * c.ffn_dim);
  b.y_logits = Carve<Bf16>(base, &at, size_t(logit_rows) * c.dim);
  b.logits = Carve<float>(base, &at, size_t(logit_rows) * c.vocab_size);
  b.decode_workspace = Carve<float>(base, &at, decode_bytes / sizeof(float));
  b.ints = Carve<int32_t>(base, &at, ints);
  b.compression = Carve<char>(base, &at, compress_bytes);
  if (out != nullptr) *out = b;
  return at;
}

absl::Status CudaBackend::Supports(const KvPolicyOptions& options) const {
  const KvPolicyKind kind = KindOf(options);
  if (kind == KvPolicyKind::kFull || kind == KvPolicyKind::kSnapKv ||
      kind == KvPolicyKind::kFastKv) {
    return absl::OkStatus();
  }
  const std::string name(KvPolicyName(options));
  // Tiered decode attends through the page-sparse decode kernel.
  if (kind == KvPolicyKind::kQuest || kind == KvPolicyKind::kFreeKv ||
      kind == KvPolicyKind::kFastKvFreeKv) {
    if (decode_kernel_) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(
        "kv policy '", name, "' is not supported by the cuda backend for this model: its ",
        config_.group_size(), " query heads per KV head exceed the page-sparse decode kernel's ",
        kernels::kDecodeMaxGroup, "; use full, snapkv or fastkv, or --backend cpu"));
  }
  return absl::FailedPreconditionError(
      absl::StrCat("kv policy '", name,
                   "' is not supported by the cuda backend (supported: full, snapkv, fastkv, "
                   "quest, freekv, fastkv_freekv); use --backend cpu"));
}

absl::Status CudaBackend::ValidateChunk(const SequenceChunk& ch) const {
  const ModelConfig& c = config_;
  auto bad = [](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("forward: ", what));
  };
  if (ch.policy != nullptr && IsTieredKvPolicy(ch.policy->name()) && !decode_kernel_) {
    return absl::FailedPreconditionError(
        absl::StrCat("forward: kv policy '", std::string(ch.policy->name()),
                     "' is not supported by the cuda backend: its attention's query group is too "
                     "large for the page-sparse decode kernel"));
  }
  if (ch.compression != nullptr && !ch.compression->empty()) {
    if (!ch.whole_prompt || ch.kv == nullptr || ch.kv->length(0) != 0) {
      return bad("a prompt compression plan on a chunk that is not a whole prompt");
    }
    if (absl::Status s = cuda::PromptCompressor::Check(
            *ch.compression, static_cast<int>(ch.tokens.size()), c.n_layers);
        !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("forward: ", s.message()));
    }
  }
  if (ch.tokens.empty()) return bad("no tokens");
  if (ch.positions.size() != ch.tokens.size()) return bad("positions and tokens differ in length");
  if (ch.kv == nullptr || ch.kv->n_layers() != c.n_layers || ch.kv->n_kv_heads() != c.n_kv_heads ||
      ch.kv->head_dim() != c.head_dim) {
    return bad("KV cache missing or of another model's shape");
  }
  if (kv_.page_size != 0 && ch.kv->page_size() != kv_.page_size) {
    return bad(absl::StrCat("KV page size ", ch.kv->page_size(),
                            ", but this backend's page arena holds pages of ", kv_.page_size,
                            " tokens"));
  }
  for (int32_t t : ch.tokens) {
    if (t < 0 || t >= c.vocab_size) return bad(absl::StrCat("token id ", t, " out of range"));
  }
  for (int32_t p : ch.positions) {
    if (p < 0 || p >= c.context_length) {
      return bad(
          absl::StrCat("position ", p, " outside the model's context [0, ", c.context_length, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status CudaBackend::Execute(std::span<const SequenceChunk> all, StepOutput* out) {
  out->Reset(all.size());
  // Chunks that fail validation or find no pages end alone; the step runs the others.
  active_.Admit(
      all,
      [this](const SequenceChunk& c) {
        KVSERVE_RETURN_IF_ERROR(ValidateChunk(c));
        if (kv_.page_size == 0 && !active_.chunks.empty() &&
            c.kv->page_size() != active_.chunks[0].kv->page_size()) {
          return absl::InvalidArgumentError("forward: chunks' KV caches differ in page size");
        }
        KVSERVE_RETURN_IF_ERROR(CheckChunkPages(c));
        if (c.policy != nullptr && IsTieredKvPolicy(c.policy->name())) {
          KVSERVE_RETURN_IF_ERROR(tiered_.Admit(c));
        }
        return absl::OkStatus();
      },
      out);
  const std::span<const SequenceChunk> batch = active_.chunks;
  if (batch.empty()) return absl::OkStatus();
  // The engine thread is not the one that loaded the model: name the device for it.
  KVSERVE_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(device_), "cudaSetDevice"));
  if (kv_.page_size == 0) {
    // The first step fixes the arena's page layout; the pool's page size never changes after.
    kv_ = {.n_kv_heads = config_.n_kv_heads,
           .page_size = batch[0].kv->page_size(),
           .head_dim = config_.head_dim};
  }
  // Tiered chunks: their caches are host tier pages; the plan reads arena pages from TieredDecode.
  KVSERVE_RETURN_IF_ERROR(tiered_.Plan(batch, kv_));
  // A graph's steps share one layout: page tables as wide as the context, decode split for it.
  graph_step_ = GraphEligible(batch);
  plan_.Build(batch, config_.n_layers, decode_kernel_, tiered_.arena(),
              graph_step_ ? CeilDiv(config_.context_length, kv_.page_size) : 0);
  const size_t page_bytes = kv_.PageElements() * sizeof(Bf16);
  const int32_t max_page = std::max(plan_.max_page(), tiered_.max_budget_page());
  KVSERVE_RETURN_IF_ERROR(pool_->EnsureKvBytes(static_cast<size_t>(max_page + 1) * page_bytes));

  size_t decode_bytes = 0;
  for (const cuda::LayerGroup& group : plan_.groups()) {
    for (const cuda::AttentionRun& run : group.runs) {
      if (!run.decode) continue;
      if (run.sparse) {
        decode_bytes = std::max(decode_bytes, tiered_.WorkspaceBytes(run.num_seqs));
        continue;
      }
      const kernels::DecodeSplitPlan split = kernels::PlanDecodeSplits(
          run.num_seqs, config_.n_kv_heads, graph_step_ ? config_.context_length : run.max_kv_len,
          num_sms_);
      decode_bytes = std::max(
          decode_bytes,
          kernels::DecodeWorkspaceBytes(split, run.num_seqs, config_.n_heads, config_.head_dim));
    }
  }
  const int rows = plan_.total_rows();
  const int logit_rows = plan_.logit_rows();
  compressing_ = compressor_.Plan(batch, config_);
  size_t compress_bytes = 0;
  if (compressing_) {
    KVSERVE_ASSIGN_OR_RETURN(compress_bytes, compressor_.DeviceBytes());
  }
  const size_t bytes = LayoutStep(rows, logit_rows, plan_.ints().size(), decode_bytes,
                                  compress_bytes, nullptr, nullptr);
  // Staging pages of tiered prompts sit after the activations, at whole arena page offsets.
  const size_t staging_bytes =
      tiered_.staging_pages() > 0 ? (tiered_.staging_pages() + 1) * page_bytes : 0;
  KVSERVE_ASSIGN_OR_RETURN(char* scratch, pool_->StepScratch(bytes + staging_bytes));
  StepBuffers b;
  LayoutStep(rows, logit_rows, plan_.ints().size(), decode_bytes, compress_bytes, scratch, &b);
  if (staging_bytes > 0) {
    const size_t offset = static_cast<size_t>(scratch + bytes - pool_->kv_base());
    tiered_.SetStagingBase(static_cast<int32_t>(CeilDiv(offset, page_bytes)));
    plan_.Build(batch, config_.n_layers, decode_kernel_, tiered_.arena());
  }
  // The rows themselves are written on the device below; the host cache only counts them (a
  // layer past a TSP takes only the propagated rows).
  for (const SequenceChunk& ch : batch) {
    for (int l = 0; l < config_.n_layers; ++l) {
      if (!ch.kv->AppendUnwritten(l, cuda::ChunkRowsAt(ch, l))) {
        return absl::InternalError("forward: KV pages vanished between the check and append");
      }
    }
  }
  if (compressing_) KVSERVE_RETURN_IF_ERROR(compressor_.Bind(b.compression, stream_));

  KVSERVE_RETURN_IF_ERROR(
      CudaStatus(cudaMemcpyAsync(b.ints, plan_.ints().data(), plan_.ints().size() * sizeof(int32_t),
                                 cudaMemcpyHostToDevice, stream_),
                 "step metadata upload"));
  KVSERVE_RETURN_IF_ERROR(tiered_.Upload(stream_));
  absl::Status run = graph_step_ ? RunLayersAsGraph(b, plan_.ints().size()) : RunLayers(b);
  if (run.ok() && logit_rows > 0) {
    out->logits.resize(static_cast<size_t>(logit_rows) * config_.vocab_size);
    run =
        CudaStatus(cudaMemcpyAsync(out->logits.data(), b.logits, out->logits.size() * sizeof(float),
                                   cudaMemcpyDeviceToHost, stream_),
                   "logits download");
  }
  // Always drain the stream: the next step reuses the scratch and the host metadata.
  const absl::Status drained = CudaStatus(cudaStreamSynchronize(stream_), "forward");
  KVSERVE_RETURN_IF_ERROR(run);
  KVSERVE_RETURN_IF_ERROR(drained);
  KVSERVE_RETURN_IF_ERROR(tiered_.Finish(active_.index, out));
  // The device compacted each compressed layer's kept rows to the front; the caches' owner trims
  // the page tables to match (out->retained), never the backend.
  if (compressing_) {
    std::vector<std::vector<KvRetention>> retained(batch.size());
    std::vector<std::vector<PromptLayerScores>> recorded(batch.size());
    compressor_.Finish(batch, config_.n_layers, &retained, &recorded);
    for (size_t b = 0; b < batch.size(); ++b) {
      out->retained[active_.index[b]] = std::move(retained[b]);
      out->prompt_layers[active_.index[b]] = std::move(recorded[b]);
    }
  }
  int logits_row = 0;
  for (size_t b = 0; b < batch.size(); ++b) {
    if (batch[b].compute_logits) out->logits_row[active_.index[b]] = logits_row++;
  }
  return absl::OkStatus();
}

bool CudaBackend::GraphEligible(std::span<const SequenceChunk> batch) const {
  // Nothing in the step may depend on more than its metadata's contents and its shape: no
  // prompt, no compression, no tiered step whose launches will not repeat.
  if (!graphs_ || !decode_kernel_ || (tiered_.any() && !tiered_.GraphReady())) return false;
  return std::all_of(batch.begin(), batch.end(), [](const SequenceChunk& ch) {
    return ch.kind == ChunkKind::kDecode && ch.tokens.size() == 1 &&
           (ch.compression == nullptr || ch.compression->empty());
  });
}

absl::Status CudaBackend::RunLayersAsGraph(const StepBuffers& b, size_t ints) {
  GraphShape shape{.rows = plan_.total_rows(),
                   .logit_rows = plan_.logit_rows(),
                   .ints = ints,
                   .scratch = reinterpret_cast<const char*>(b.x)};
  // The layer groups and their runs (which launch serves which rows), then the tiered launches.
  for (const cuda::LayerGroup& g : plan_.groups()) {
    shape.layout.insert(shape.layout.end(),
                        {g.first_layer, g.end_layer, g.total_rows, int64_t(g.positions),
                         int64_t(g.cu_seqlens), int64_t(g.cache_positions), int64_t(g.kv_lens)});
    for (const cuda::AttentionRun& r : g.runs) {
      shape.layout.insert(shape.layout.end(), {r.sparse, r.first_seq, r.num_seqs, r.first_row});
    }
  }
  if (tiered_.any()) tiered_.AppendGraphKey(&shape.layout);
  // A capture cannot wait on the side streams' earlier work: the compute stream does it first.
  KVSERVE_RETURN_IF_ERROR(tiered_.WaitForSideStreams(stream_));
  if (auto it = graphs_by_shape_.find(shape); it != graphs_by_shape_.end()) {
    ++graph_replays_;
    return CudaStatus(cudaGraphLaunch(it->second, stream_), "decode graph launch");
  }
  // A scratch that moved leaves graphs that point into the old one: forget them; and keep a
  // bounded number (tiered keys change when a pool or the host tier grows).
  for (auto it = graphs_by_shape_.begin(); it != graphs_by_shape_.end();) {
    if (it->first.scratch == shape.scratch && graphs_by_shape_.size() < kMaxGraphs) {
      ++it;
      continue;
    }
    cudaGraphExecDestroy(it->second);
    it = graphs_by_shape_.erase(it);
  }
  KVSERVE_RETURN_IF_ERROR(CudaStatus(
      cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "decode graph capture"));
  absl::Status recorded = RunLayers(b);
  if (recorded.ok()) recorded = tiered_.JoinSideStreams(stream_);
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream_, &graph);
  cudaGraphExec_t exec = nullptr;
  cudaError_t made = ended;
  if (recorded.ok() && made == cudaSuccess) made = cudaGraphInstantiate(&exec, graph, 0);
  if (graph != nullptr) cudaGraphDestroy(graph);
  KVSERVE_RETURN_IF_ERROR(recorded);
  if (made != cudaSuccess) {
    // Nothing ran: the step runs eagerly, and so does every later one.
    cudaGetLastError();
    spdlog::warn(
        "cuda backend: capturing a decode step as a CUDA graph failed ({}); decode runs "
        "without graphs from now on",
        cudaGetErrorString(made));
    graphs_ = false;
    return RunLayers(b);
  }
  graphs_by_shape_[shape] = exec;
  ++graph_captures_;
  return CudaStatus(cudaGraphLaunch(exec, stream_), "decode graph launch");
}

absl::Status CudaBackend::RunLayers(const StepBuffers& b) {
  const ModelConfig& c = config_;
  const int qkv_dim = c.q_dim() + 2 * c.kv_dim();
  int32_t* ints = b.ints;
  // The residual stream x picks up each block's output (delta) in the next norm's fused add; a
  // TSP gathers x's kept rows into delta's buffer, and the two swap.
  Bf16* x = b.x;
  Bf16* delta = b.delta;

  if (auto s = CudaStatus(
          kernels::LaunchEmbeddingGather(weights_.token_embedding, c.vocab_size, c.dim,
                                         ints + plan_.tokens(), plan_.total_rows(), x, stream_),
          "embedding");
      !s.ok()) {
    return s;
  }
  for (int l = 0; l < c.n_layers; ++l) {
    const cuda::DeviceLayerWeights& w = weights_.layers[l];
    const cuda::LayerGroup& group = plan_.group(l);
    int rows = group.total_rows;
    KVSERVE_RETURN_IF_ERROR(
        CudaStatus(kernels::LaunchResidualRmsNorm(x, l == 0 ? nullptr : delta, w.attn_norm, b.y,
                                                  rows, c.dim, c.rms_eps, stream_),
                   "attention norm"));
    KVSERVE_RETURN_IF_ERROR(gemm_->Run(b.y, w.wqkv, b.qkv, rows, qkv_dim, c.dim, stream_));
    const kernels::RopeParams rope{.q = b.qkv,
                                   .q_row_stride = qkv_dim,
                                   .n_heads = c.n_heads,
                                   .k = b.qkv + c.q_dim(),
                                   .k_row_stride = qkv_dim,
                                   .n_kv_heads = c.n_kv_heads,
                                   .positions = ints + group.positions,
                                   .rows = rows,
                                   .table = rope_table_,
                                   .max_positions = c.context_length,
                                   .head_dim = c.head_dim,
                                   .rope_dim = c.rope_dim,
                                   .pairs = c.rope_style == RopeStyle::kAdjacentPairs
                                                ? kernels::RopePairs::kAdjacent
                                                : kernels::RopePairs::kHalfSplit};
    KVSERVE_RETURN_IF_ERROR(CudaStatus(kernels::LaunchRope(rope, stream_), "rope"));
    KVSERVE_RETURN_IF_ERROR(Attention(b, l));
    const bool propagate = compressing_ && compressor_.Propagates(l) && l + 1 < c.n_layers;
    if (compressing_ && compressor_.Scores(l)) {
      // SnapKV/FastKV: the layer's own attention saw every row; what stays cached is decided now.
      const kernels::PagedKvCache cache{.pages = reinterpret_cast<Bf16*>(pool_->kv_base()),
                                        .layout = kv_,
                                        .page_table = ints + plan_.page_table(l),
                                        .page_table_stride = plan_.page_table_stride()};
      KVSERVE_RETURN_IF_ERROR(
          compressor_.RunLayer(l, b.qkv, qkv_dim, ints + group.cu_seqlens, cache, stream_));
    }
    // Tiered prompts' rows (compacted, if their plan compresses) and decode rows to the host tier.
    KVSERVE_RETURN_IF_ERROR(
        tiered_.AfterPrefillLayer(l, reinterpret_cast<Bf16*>(pool_->kv_base()), stream_));
    KVSERVE_RETURN_IF_ERROR(gemm_->Run(b.attn, w.wo, delta, rows, c.dim, c.q_dim(), stream_));
    KVSERVE_RETURN_IF_ERROR(CudaStatus(
        kernels::LaunchResidualRmsNorm(x, delta, w.ffn_norm, b.y, rows, c.dim, c.rms_eps, stream_),
        "ffn norm"));
    if (propagate) {
      // TSP (research/fastkv.md §2.4): the MLP is per row, so the kept rows are gathered before
      // it, with their positions, and every later layer runs on them alone.
      const cuda::LayerGroup& next = plan_.group(l + 1);
      if (!next.propagated || next.total_rows != compressor_.PropagatedRows(l)) {
        return absl::InternalError(absl::StrCat("forward: layer ", l + 1, " plans ",
                                                next.total_rows, " rows, the TSP keeps ",
                                                compressor_.PropagatedRows(l)));
      }
      KVSERVE_RETURN_IF_ERROR(compressor_.Propagate(l, x, c.dim, ints + group.cu_seqlens,
                                                    ints + group.positions, delta,
                                                    ints + next.positions, stream_));
      std::swap(x, delta);
      rows = next.total_rows;
      KVSERVE_RETURN_IF_ERROR(
          CudaStatus(kernels::LaunchResidualRmsNorm(x, nullptr, w.ffn_norm, b.y, rows, c.dim,
                                                    c.rms_eps, stream_),
                     "ffn norm"));
    }
    KVSERVE_RETURN_IF_ERROR(
        gemm_->Run(b.y, w.w_gate_up, b.gate_up, rows, 2 * c.ffn_dim, c.dim, stream_));
    KVSERVE_RETURN_IF_ERROR(
        CudaStatus(kernels::LaunchSwiglu(b.gate_up, b.ffn, rows, c.ffn_dim, stream_), "swiglu"));
    KVSERVE_RETURN_IF_ERROR(gemm_->Run(b.ffn, w.w_down, delta, rows, c.dim, c.ffn_dim, stream_));
  }
  const int logit_rows = plan_.logit_rows();
  if (logit_rows == 0) return absl::OkStatus();
  // The final norm over every row is one cheap pass; only the wanted rows reach the LM head.
  const int rows = plan_.group(c.n_layers - 1).total_rows;
  KVSERVE_RETURN_IF_ERROR(
      CudaStatus(kernels::LaunchResidualRmsNorm(x, delta, weights_.final_norm, b.y, rows, c.dim,
                                                c.rms_eps, stream_),
                 "final norm"));
  KVSERVE_RETURN_IF_ERROR(
      CudaStatus(cuda::LaunchRowGather(b.y, c.dim, b.y_logits, c.dim, c.dim,
                                       ints + plan_.logit_row_ids(), logit_rows, stream_),
                 "logit rows"));
  return gemm_->Run(b.y_logits, weights_.lm_head, b.logits, logit_rows, c.vocab_size, c.dim,
                    stream_);
}

absl::Status CudaBackend::Attention(const StepBuffers& b, int layer) {
  const ModelConfig& c = config_;
  const int qkv_dim = c.q_dim() + 2 * c.kv_dim();
  const int32_t* ints = b.ints;
  const cuda::LayerGroup& group = plan_.group(layer);
  const int stride = plan_.page_table_stride();
  const int32_t* page_table = ints + plan_.page_table(layer);
  const kernels::PagedKvCache cache{.pages = reinterpret_cast<Bf16*>(pool_->kv_base()),
                                    .layout = kv_,
                                    .page_table = page_table,
                                    .page_table_stride = stride};
  const kernels::RaggedBatch all{.cu_seqlens = ints + group.cu_seqlens,
                                 .cache_positions = ints + group.cache_positions,
                                 .num_seqs = plan_.num_seqs(),
                                 .total_tokens = group.total_rows,
                                 .max_seqlen = group.max_seqlen};
  const Bf16* k = b.qkv + c.q_dim();
  Bf16* arena = reinterpret_cast<Bf16*>(pool_->kv_base());
  KVSERVE_RETURN_IF_ERROR(tiered_.BeforeAppend(layer, arena, stream_));
  KVSERVE_RETURN_IF_ERROR(
      CudaStatus(kernels::LaunchKvAppend(k, qkv_dim, k + c.kv_dim(), qkv_dim, all, cache, stream_),
                 "kv append"));
  KVSERVE_RETURN_IF_ERROR(tiered_.AfterAppend(layer, arena, stream_));
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  for (const cuda::AttentionRun& run : group.runs) {
    kernels::PagedKvCache run_cache = cache;
    run_cache.page_table = page_table + static_cast<size_t>(run.first_seq) * stride;
    const Bf16* q = b.qkv + static_cast<size_t>(run.first_row) * qkv_dim;
    Bf16* out = b.attn + static_cast<size_t>(run.first_row) * c.q_dim();
    const int32_t* kv_lens = ints + group.kv_lens + run.first_seq;
    if (run.sparse) {
      KVSERVE_RETURN_IF_ERROR(tiered_.Attend(layer, run, q, qkv_dim, out, c.q_dim(), scale, arena,
                                             b.decode_workspace, stream_));
      continue;
    }
    cudaError_t e;
    if (run.decode) {
      // A graph replays for later steps of longer contexts: its splits cover the whole context.
      const int max_kv_len = graph_step_ ? c.context_length : run.max_kv_len;
      const kernels::DecodeAttentionParams p{.q = q,
                                             .q_row_stride = qkv_dim,
                                             .out = out,
                                             .out_row_stride = c.q_dim(),
                                             .kv_lens = kv_lens,
                                             .num_seqs = run.num_seqs,
                                             .max_kv_len = max_kv_len,
                                             .cache = run_cache,
                                             .n_heads = c.n_heads,
                                             .scale = scale};
      const kernels::DecodeSplitPlan split =
          kernels::PlanDecodeSplits(run.num_seqs, c.n_kv_heads, max_kv_len, num_sms_);
      e = kernels::LaunchDecodeAttention(p, split, b.decode_workspace, stream_);
    } else {
      const kernels::PrefillAttentionParams p{
          .q = q,
          .q_row_stride = qkv_dim,
          .out = out,
          .out_row_stride = c.q_dim(),
          .batch = {.cu_seqlens = ints + run.cu_seqlens,
                    .cache_positions = ints + group.cache_positions + run.first_row,
                    .num_seqs = run.num_seqs,
                    .total_tokens = run.rows,
                    .max_seqlen = run.max_seqlen},
          .kv_lens = kv_lens,
          .cache = run_cache,
          .n_heads = c.n_heads,
          .scale = scale};
      e = kernels::LaunchPrefillAttention(p, stream_);
    }
    KVSERVE_RETURN_IF_ERROR(CudaStatus(e, run.decode ? "decode attention" : "prefill attention"));
  }
  return tiered_.AfterAttention(layer, arena, stream_);
}

}  // namespace kvserve
