#include "engine/runtime/cpu/cpu_backend.h"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/runtime/cpu/cpu_ops.h"
#include "engine/runtime/cpu/window_scores.h"
#include "kernels/ceil_div.h"

namespace kvserve {
namespace {

// A matrix of the model as a linear layer's part: its stored (quantized) form when the loader kept
// one, else its fp32 field, moved either way.
cpu::LinearWeights::Source TakeMatrix(ModelWeights& w, const std::string& name,
                                      std::vector<float>& fp32, int64_t rows, int64_t cols) {
  auto it = w.stored.find(name);
  if (it != w.stored.end()) {
    WeightMatrix m = std::move(it->second);
    w.stored.erase(it);
    return m;
  }
  return cpu::LinearWeights::Fp32Matrix{.values = std::move(fp32), .rows = rows, .cols = cols};
}

// The parts of one LinearWeights, moved in: a braced list would copy each matrix (an
// initializer_list's elements are const), doubling the load's peak memory for the largest one.
template <typename... Parts>
cpu::LinearWeights Linear(Parts&&... parts) {
  std::vector<cpu::LinearWeights::Source> sources;
  sources.reserve(sizeof...(parts));
  (sources.push_back(std::forward<Parts>(parts)), ...);
  return cpu::LinearWeights(std::move(sources));
}

// Rows of `pages` in `kv`'s `layer`: each page is full but the cache's last.
int PageRows(const SequenceKvCache& kv, int layer, std::span<const int32_t> pages) {
  const int p = kv.page_size();
  int rows = 0;
  for (const int32_t page : pages) rows += std::min(p, kv.length(layer) - page * p);
  return rows;
}

// Copies KV head `kv_head`'s rows of `pages`, in list order, to contiguous [rows][head_dim].
void GatherPages(const SequenceKvCache& kv, int layer, int kv_head, std::span<const int32_t> pages,
                 float* keys, float* values) {
  const int p = kv.page_size();
  for (const int32_t page : pages) {
    const int begin = page * p;
    const int end = std::min(begin + p, kv.length(layer));
    kv.GatherHead(layer, kv_head, begin, end, keys, values);
    keys += static_cast<size_t>(end - begin) * kv.head_dim();
    values += static_cast<size_t>(end - begin) * kv.head_dim();
  }
}

template <typename T>
T* Grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

}  // namespace

absl::StatusOr<std::unique_ptr<CpuBackend>> CpuBackend::Create(const ModelConfig& config,
                                                               ModelWeights weights, int threads) {
  KVSERVE_RETURN_IF_ERROR(config.Validate());
  KVSERVE_RETURN_IF_ERROR(weights.CheckShapes(config));
  return std::unique_ptr<CpuBackend>(new CpuBackend(config, std::move(weights), threads));
}

CpuBackend::CpuBackend(const ModelConfig& config, ModelWeights w, int threads)
    : config_(config), final_norm_(std::move(w.final_norm)), pool_(threads) {
  // The pool is the only parallelism: OpenBLAS's own threads would spin against it.
  openblas_set_num_threads(1);
  s_.scores.resize(pool_.size());
  const ModelConfig& c = config_;
  token_embedding_ =
      Linear(TakeMatrix(w, "token_embd.weight", w.token_embedding, c.vocab_size, c.dim));
  if (!c.tied_embeddings) {
    lm_head_ = Linear(TakeMatrix(w, "output.weight", w.lm_head, c.vocab_size, c.dim));
  }
  layers_.reserve(w.layers.size());
  for (size_t i = 0; i < w.layers.size(); ++i) {
    LayerWeights& l = w.layers[i];
    const std::string p = absl::StrCat("blk.", i, ".");
    auto take = [&](const char* name, std::vector<float>& fp32, int64_t rows, int64_t cols) {
      return TakeMatrix(w, p + name, fp32, rows, cols);
    };
    Layer layer{.attn_norm = std::move(l.attn_norm), .ffn_norm = std::move(l.ffn_norm)};
    layer.wqkv = Linear(take("attn_q.weight", l.wq, c.q_dim(), c.dim),
                        take("attn_k.weight", l.wk, c.kv_dim(), c.dim),
                        take("attn_v.weight", l.wv, c.kv_dim(), c.dim));
    layer.wo = Linear(take("attn_output.weight", l.wo, c.dim, c.q_dim()));
    layer.w_gate_up = Linear(take("ffn_gate.weight", l.w_gate, c.ffn_dim, c.dim),
                             take("ffn_up.weight", l.w_up, c.ffn_dim, c.dim));
    layer.w_down = Linear(take("ffn_down.weight", l.w_down, c.dim, c.ffn_dim));
    layers_.push_back(std::move(layer));
  }
}

size_t CpuBackend::weight_bytes() const {
  size_t n = token_embedding_.bytes() + lm_head_.bytes() + final_norm_.size() * sizeof(float);
  for (const Layer& l : layers_) {
    n += (l.attn_norm.size() + l.ffn_norm.size()) * sizeof(float) + l.wqkv.bytes() + l.wo.bytes() +
         l.w_gate_up.bytes() + l.w_down.bytes();
  }
  return n;
}

std::string_view CpuBackend::kernel_isa() const { return kernels::cpu::IsaName(linear_.isa()); }

absl::Status CpuBackend::SetKvDtype(KvDtype dtype) {
  kv_dtype_ = dtype;
  return absl::OkStatus();
}

absl::Status CpuBackend::ValidateChunk(const SequenceChunk& c) const {
  auto bad = [](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("forward: ", what));
  };
  if (c.tokens.empty()) return bad("no tokens");
  if (c.positions.size() != c.tokens.size()) return bad("positions and tokens differ in length");
  if (c.kv == nullptr || c.kv->n_layers() != config_.n_layers ||
      c.kv->n_kv_heads() != config_.n_kv_heads || c.kv->head_dim() != config_.head_dim) {
    return bad("KV cache missing or of another model's shape");
  }
  for (int32_t t : c.tokens) {
    if (t < 0 || t >= config_.vocab_size) return bad(absl::StrCat("token id ", t, " out of range"));
  }
  for (int32_t p : c.positions) {
    if (p < 0) return bad(absl::StrCat("negative position ", p));
  }
  KVSERVE_RETURN_IF_ERROR(CheckChunkPages(c));
  if (c.kind == ChunkKind::kDecode && (c.tokens.size() != 1 || c.whole_prompt)) {
    return bad("a decode chunk runs one token and is not a prompt");
  }
  if (c.compression != nullptr && !c.compression->empty()) {
    if (!c.whole_prompt)
      return bad("a prompt compression plan on a chunk that is not a whole prompt");
    if (static_cast<int>(c.compression->layers.size()) != config_.n_layers) {
      return bad("the prompt compression plan does not list every layer");
    }
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::Execute(std::span<const SequenceChunk> all, StepOutput* out) {
  out->Reset(all.size());
  // Chunks that fail validation end alone; the step runs the others.
  active_.Admit(
      all, [this](const SequenceChunk& c) { return ValidateChunk(c); }, out);
  const std::span<const SequenceChunk> batch = active_.chunks;
  if (batch.empty()) return absl::OkStatus();
  const ModelConfig& c = config_;
  const int dim = c.dim;
  const int qkv_dim = c.q_dim() + 2 * c.kv_dim();
  int total = 0;
  chunk_n_.clear();
  chunk_status_.assign(batch.size(), absl::OkStatus());
  recorded_.assign(batch.size(), {});
  retained_.assign(batch.size(), {});
  for (const SequenceChunk& ch : batch) {
    total += static_cast<int>(ch.tokens.size());
    chunk_n_.push_back(static_cast<int>(ch.tokens.size()));
  }

  float* x = Grow(s_.x, static_cast<size_t>(total) * dim);
  float* xn = Grow(s_.xn, static_cast<size_t>(total) * dim);
  float* qkv = Grow(s_.qkv, static_cast<size_t>(total) * qkv_dim);
  float* ffn = Grow(s_.ffn, static_cast<size_t>(total) * c.ffn_dim);
  float* gate_up = Grow(s_.gate_up, static_cast<size_t>(total) * 2 * c.ffn_dim);
  Grow(s_.q, static_cast<size_t>(total) * c.q_dim());
  Grow(s_.attn, static_cast<size_t>(total) * c.q_dim());
  int32_t* positions = Grow(s_.positions, total);
  float* rope_cos = Grow(s_.rope_cos, static_cast<size_t>(total) * c.rope_dim / 2);
  float* rope_sin = Grow(s_.rope_sin, static_cast<size_t>(total) * c.rope_dim / 2);

  int row = 0;
  for (const SequenceChunk& ch : batch) {
    for (size_t i = 0; i < ch.tokens.size(); ++i, ++row) {
      token_embedding_.RowToF32(ch.tokens[i], x + static_cast<size_t>(row) * dim);
      positions[row] = ch.positions[i];
    }
  }
  cpu::RopeTables({positions, static_cast<size_t>(total)}, c.rope_dim, c.rope_theta, rope_cos,
                  rope_sin);
  const bool adjacent = c.rope_style == RopeStyle::kAdjacentPairs;

  int rows = total;  // rows still carried through the layers
  int logit_rows = 0;
  for (int l = 0; l < c.n_layers; ++l) {
    const Layer& w = layers_[l];
    const bool last = l == c.n_layers - 1;
    cpu::RmsNorm(pool_, x, w.attn_norm.data(), xn, rows, dim, c.rms_eps);
    linear_.Run(xn, w.wqkv, qkv, rows);
    // Rotate Q and K in place inside the fused [q | k | v] rows.
    cpu::ApplyRope(qkv, rows, qkv_dim, c.n_heads, c.head_dim, c.rope_dim, rope_cos, rope_sin,
                   adjacent);
    cpu::ApplyRope(qkv + c.q_dim(), rows, qkv_dim, c.n_kv_heads, c.head_dim, c.rope_dim, rope_cos,
                   rope_sin, adjacent);
    KVSERVE_RETURN_IF_ERROR(Attention(batch, l, /*logit_rows_only=*/last));
    bool propagate = false;
    propagate = RunPromptPlans(batch, l);
    if (last) {
      // Past the last layer's K/V only the rows whose logits are wanted matter: keep just those.
      int src = 0, dst = 0;
      for (size_t b = 0; b < batch.size(); ++b) {
        const SequenceChunk& ch = batch[b];
        src += chunk_n_[b];
        if (!ch.compute_logits || !chunk_status_[b].ok()) continue;
        std::memmove(x + static_cast<size_t>(dst) * dim, x + static_cast<size_t>(src - 1) * dim,
                     dim * sizeof(float));
        ++dst;
      }
      rows = logit_rows = dst;
    }
    linear_.Run(s_.attn.data(), w.wo, x, rows, /*accumulate=*/true);
    // TSP: the MLP is per row, so gathering before it saves the dropped rows' MLP too.
    if (propagate && !last) rows = PropagateRows(batch);

    cpu::RmsNorm(pool_, x, w.ffn_norm.data(), xn, rows, dim, c.rms_eps);
    linear_.Run(xn, w.w_gate_up, gate_up, rows);
    cpu::SiluMul(pool_, gate_up, ffn, rows, c.ffn_dim);
    linear_.Run(ffn, w.w_down, x, rows, /*accumulate=*/true);
  }

  cpu::RmsNorm(pool_, x, final_norm_.data(), xn, logit_rows, dim, c.rms_eps);
  out->logits.resize(static_cast<size_t>(logit_rows) * c.vocab_size);
  linear_.Run(xn, lm_head_.rows() == 0 ? token_embedding_ : lm_head_, out->logits.data(),
              logit_rows);
  int logits_row = 0;
  for (size_t b = 0; b < batch.size(); ++b) {
    const int i = active_.index[b];
    out->chunk_status[i] = chunk_status_[b];
    out->prompt_layers[i] = std::move(recorded_[b]);
    out->retained[i] = std::move(retained_[b]);
    if (chunk_status_[b].ok() && batch[b].compute_logits) out->logits_row[i] = logits_row++;
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::Attention(std::span<const SequenceChunk> batch, int layer,
                                   bool logit_rows_only) {
  const ModelConfig& c = config_;
  const int qkv_dim = c.q_dim() + 2 * c.kv_dim();
  const cpu::AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim};
  // Split each chunk's fused rows into Q and append its K/V to the cache (serial, cheap).
  std::vector<int>& first_row = chunk_rows_;
  first_row.clear();
  size_t scratch_floats = 0;
  int row = 0;
  decode_hooked_.assign(batch.size(), 0);
  sparse_.assign(batch.size(), 0);
  if (layer == 0) {
    own_pages_.resize(batch.size());
    pages_.assign(batch.size(), nullptr);
  }
  for (size_t b = 0; b < batch.size(); ++b) {
    const SequenceChunk& ch = batch[b];
    const int n = chunk_n_[b];
    for (int i = 0; i < n; ++i) {
      std::memcpy(s_.q.data() + static_cast<size_t>(row + i) * c.q_dim(),
                  s_.qkv.data() + static_cast<size_t>(row + i) * qkv_dim,
                  c.q_dim() * sizeof(float));
    }
    // Decode chunks go through the policy's decode hooks (quest/freekv page selection).
    decode_hooked_[b] =
        ch.policy != nullptr && ch.kind == ChunkKind::kDecode && chunk_status_[b].ok();
    if (decode_hooked_[b]) {
      if (layer == 0) {
        pages_[b] = ch.decode_pages != nullptr ? ch.decode_pages : &own_pages_[b];
        pages_[b]->Reset(c.n_kv_heads);
      }
      ch.policy->BeginDecodeLayer(layer);
    }
    const float* rows_k = s_.qkv.data() + static_cast<size_t>(row) * qkv_dim + c.q_dim();
    // ValidateChunk saw the pages; a layer past a TSP appends fewer rows.
    if (n > 0 && !ch.kv->Append(layer, rows_k, rows_k + c.kv_dim(), n, qkv_dim)) {
      Fail(b, absl::InternalError("forward: KV pages vanished between the check and append"));
    }
    if (decode_hooked_[b] && chunk_status_[b].ok()) {
      PlanDecodePages(ch, b, layer, s_.q.data() + static_cast<size_t>(row) * c.q_dim());
    }
    // Room for the task's own scores plus its KV head's rows gathered out of their pages.
    scratch_floats =
        std::max(scratch_floats, cpu::AttentionScratchFloats(n, ch.kv->length(layer), shape) +
                                     size_t{2} * ch.kv->length(layer) * c.head_dim);
    first_row.push_back(row);
    row += n;
  }
  for (std::vector<float>& s : s_.scores) Grow(s, scratch_floats);
  // One task per (chunk, KV head, query block). With `logit_rows_only` a chunk's only task row is
  // its last query, written to the chunk's compact output row.
  std::vector<AttentionTask>& tasks = attention_tasks_;
  tasks.clear();
  int out_row = 0;
  for (size_t b = 0; b < batch.size(); ++b) {
    const int n = chunk_n_[b];
    const int chunk = static_cast<int>(b);
    if (!chunk_status_[b].ok() || (logit_rows_only && !batch[b].compute_logits)) continue;
    for (int kv_head = 0; kv_head < c.n_kv_heads; ++kv_head) {
      if (logit_rows_only) {
        tasks.push_back({chunk, kv_head, 0, first_row[b] + n - 1, out_row, 1});
        continue;
      }
      for (int block = 0; block < cpu::AttentionQueryBlocks(n); ++block) {
        tasks.push_back({chunk, kv_head, block, first_row[b], first_row[b], n});
      }
    }
    out_row += logit_rows_only ? 1 : 0;
  }
  // Later blocks see more keys: hand out the costliest first, each worker taking the next free one.
  std::stable_sort(tasks.begin(), tasks.end(), [](const AttentionTask& a, const AttentionTask& b) {
    return a.block > b.block;
  });
  // Scores and weighted sums of a task's group of query heads over the keys it sees: what decides
  // whether waking the other workers pays.
  double work = 0;
  for (const AttentionTask& task : tasks) {
    const int keys = AttendedRows(batch[task.chunk], task.chunk, layer, task.kv_head);
    work += 4.0 * c.group_size() * c.head_dim * keys *
            std::min(task.n, cpu::AttentionKeysNeeded(task.n, keys, task.block));
  }
  std::atomic<size_t> next = 0;
  pool_.ParallelFor(
      pool_.size(),
      [&](int64_t, int64_t, int worker) {
        std::vector<KvRowSpan> spans;
        for (size_t t; (t = next.fetch_add(1)) < tasks.size();) {
          const AttentionTask& task = tasks[t];
          const SequenceChunk& ch = batch[task.chunk];
          // A sparse decode attends over its pages' rows: a subset of the cache, no more rows.
          const int cache_len = AttendedRows(ch, task.chunk, layer, task.kv_head);
          const int keys_needed = cpu::AttentionKeysNeeded(task.n, cache_len, task.block);
          const cpu::AttentionInputs in{
              .q = s_.q.data() + static_cast<size_t>(task.q_row) * c.q_dim(),
              .keys = nullptr,
              .values = nullptr,
              .out = s_.attn.data() + static_cast<size_t>(task.out_row) * c.q_dim(),
              .n = task.n,
              .cache_len = cache_len,
              .shape = shape};
          if (cpu::AttendsDirectly(task.n)) {  // decode: the rows where they lie
            spans.clear();
            if (sparse_[task.chunk]) {
              const int p = ch.kv->page_size();
              for (const int32_t page : pages_[task.chunk]->pages(layer, task.kv_head)) {
                ch.kv->HeadSpans(layer, task.kv_head, page * p,
                                 std::min((page + 1) * p, ch.kv->length(layer)), &spans);
              }
            } else {
              ch.kv->HeadSpans(layer, task.kv_head, 0, keys_needed, &spans);
            }
            cpu::DirectAttention(in, spans, task.kv_head, s_.scores[worker].data());
            continue;
          }
          float* keys = s_.scores[worker].data();
          float* values = keys + static_cast<size_t>(keys_needed) * c.head_dim;
          if (sparse_[task.chunk]) {
            GatherPages(*ch.kv, layer, task.kv_head, pages_[task.chunk]->pages(layer, task.kv_head),
                        keys, values);
          } else {
            ch.kv->GatherHead(layer, task.kv_head, 0, keys_needed, keys, values);
          }
          cpu::AttentionInputs gathered = in;
          gathered.keys = keys;
          gathered.values = values;
          cpu::CausalAttention(gathered, task.kv_head, task.block,
                               values + static_cast<size_t>(keys_needed) * c.head_dim);
        }
      },
      work / pool_.size());
  for (size_t b = 0; b < batch.size(); ++b) {
    if (!decode_hooked_[b] || !chunk_status_[b].ok()) continue;
    batch[b].policy->FinishDecodeAttention(
        layer, s_.q.data() + static_cast<size_t>(first_row[b]) * c.q_dim(), *batch[b].kv);
  }
  return absl::OkStatus();
}

void CpuBackend::PlanDecodePages(const SequenceChunk& ch, size_t b, int layer, const float* q) {
  DecodePageLists& lists = *pages_[b];
  if (!ch.policy->PrepareDecodeAttention(layer, q, *ch.kv)) {
    lists.AddDenseLayer();
    return;
  }
  ch.policy->DecodePages(layer, &lists);
  // The lists index this cache's pages: a policy's list it cannot serve ends this chunk alone.
  const int32_t n_pages = CeilDiv(ch.kv->length(layer), ch.kv->page_size());
  bool valid = lists.layers() == layer + 1 && lists.is_sparse(layer);
  for (int g = 0; valid && g < config_.n_kv_heads; ++g) {
    for (const int32_t page : lists.pages(layer, g)) valid &= page >= 0 && page < n_pages;
  }
  if (!valid) {
    Fail(b, absl::InternalError(
                absl::StrCat("forward: decode page lists of layer ", layer, " out of the cache")));
    return;
  }
  sparse_[b] = 1;
}

int CpuBackend::AttendedRows(const SequenceChunk& ch, size_t b, int layer, int kv_head) const {
  return sparse_[b] ? PageRows(*ch.kv, layer, pages_[b]->pages(layer, kv_head))
                    : ch.kv->length(layer);
}

bool CpuBackend::RunPromptPlans(std::span<const SequenceChunk> batch, int layer) {
  const ModelConfig& c = config_;
  const cpu::AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim};
  propagate_.resize(batch.size());
  bool any = false;
  for (size_t b = 0; b < batch.size(); ++b) {
    const SequenceChunk& ch = batch[b];
    propagate_[b].clear();
    if (!chunk_status_[b].ok()) {
      any |= chunk_n_[b] > 0;  // drop what is left of a failed chunk's rows
      continue;
    }
    if (ch.compression == nullptr || ch.compression->empty()) continue;
    const PromptCompressionPlan& plan = *ch.compression;
    const int n = chunk_n_[b];
    auto fail = [&](absl::string_view what) {
      Fail(b, absl::InternalError(
                  absl::StrCat("forward: prompt compression at layer ", layer, ": ", what)));
      any = true;
    };
    const int window = plan.layers[layer].window;
    if (window == 0) {
      if (plan.record_scores) recorded_[b].push_back({.n = n});
      continue;
    }
    // The layer's cache holds exactly this prompt's rows: the window scores need all of them.
    if (window >= n || ch.kv->length(layer) != n || plan.RowsAt(layer) != n) {
      fail(absl::StrCat("window ", window, " over ", n, " rows, cache of ", ch.kv->length(layer),
                        ", plan of ", plan.RowsAt(layer)));
      continue;
    }
    const size_t head_floats = static_cast<size_t>(n) * c.head_dim;
    float* keys = Grow(s_.window_keys, head_floats * c.n_kv_heads);
    float* values = Grow(s_.window_values, head_floats * c.n_kv_heads);
    std::vector<const float*> head_keys(c.n_kv_heads);
    for (int g = 0; g < c.n_kv_heads; ++g) {
      head_keys[g] = keys + g * head_floats;
      ch.kv->GatherHead(layer, g, 0, n, keys + g * head_floats, values + g * head_floats);
    }
    const size_t score_floats = static_cast<size_t>(c.n_heads) * (n - window);
    float* scores = Grow(s_.window_scores, score_floats);
    cpu::WindowScores(s_.q.data() + static_cast<size_t>(chunk_rows_[b]) * c.q_dim(),
                      head_keys.data(), n, window, shape, scores);
    absl::StatusOr<LayerSelection> selection =
        SelectPromptRows(plan, layer, n, {scores, score_floats}, c.n_heads, c.n_kv_heads);
    if (!selection.ok()) {
      fail(selection.status().message());
      continue;
    }
    if (plan.record_scores) {
      recorded_[b].push_back({.n = n,
                              .window = window,
                              .scores = std::vector<float>(scores, scores + score_floats),
                              .propagate = selection->propagate});
    }
    // The cache keeps every row until the step ends: later layers read only their own.
    if (!selection->retain.empty()) {
      retained_[b].push_back({.layer = layer, .rows = std::move(selection->retain)});
    }
    std::vector<int32_t>& keep = selection->propagate;
    if (keep.empty() || static_cast<int>(keep.size()) == n) continue;
    if (keep.back() != n - 1) {
      fail("propagation must keep the last row: it carries the chunk's logits");
      continue;
    }
    propagate_[b] = std::move(keep);
    any = true;
  }
  return any;
}

void CpuBackend::Fail(size_t chunk, absl::Status status) {
  if (chunk_status_[chunk].ok()) chunk_status_[chunk] = std::move(status);
}

int CpuBackend::PropagateRows(std::span<const SequenceChunk> batch) {
  const ModelConfig& c = config_;
  const int half = c.rope_dim / 2;
  // Rows only move towards the front (dst <= src), so copying in order never overwrites a row
  // still to be read.
  auto move_row = [&](int src, int dst) {
    if (src == dst) return;
    std::memmove(s_.x.data() + static_cast<size_t>(dst) * c.dim,
                 s_.x.data() + static_cast<size_t>(src) * c.dim, c.dim * sizeof(float));
    std::memmove(s_.rope_cos.data() + static_cast<size_t>(dst) * half,
                 s_.rope_cos.data() + static_cast<size_t>(src) * half, half * sizeof(float));
    std::memmove(s_.rope_sin.data() + static_cast<size_t>(dst) * half,
                 s_.rope_sin.data() + static_cast<size_t>(src) * half, half * sizeof(float));
    s_.positions[dst] = s_.positions[src];
  };
  int src = 0, dst = 0;
  for (size_t b = 0; b < batch.size(); ++b) {
    const int n = chunk_n_[b];
    if (!chunk_status_[b].ok()) {
      chunk_n_[b] = 0;  // a failed chunk's rows leave the step
    } else if (propagate_[b].empty()) {
      for (int i = 0; i < n; ++i) move_row(src + i, dst++);
    } else {
      for (int32_t i : propagate_[b]) move_row(src + i, dst++);
      chunk_n_[b] = static_cast<int>(propagate_[b].size());
    }
    src += n;
  }
  return dst;
}

}  // namespace kvserve
