#include "engine/runtime/cuda/tiered_decode.h"

#include <algorithm>
#include <bit>
#include <functional>
#include <map>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/runtime/cuda/cuda_status.h"
#include "kernels/ceil_div.h"
#include "kernels/decode_split_plan.h"
#include "kernels/page_digest_build.h"
#include "kernels/page_recall.h"
#include "kernels/page_select.h"
#include "kernels/query_drift.h"
#include "kernels/sparse_decode_attention.h"

namespace kvserve::cuda {
namespace {

using kernels::Bf16;

kernels::TieredLayout LayoutOf(const BudgetLayout& b) {
  return {.slots = b.slots, .sink = b.sink, .window = b.window};
}

}  // namespace

TieredDecode::~TieredDecode() {
  if (copy_stream_ == nullptr) return;
  cudaDeviceSynchronize();
  for (auto* events : {&appended_, &attention_done_, &recall_done_}) {
    for (cudaEvent_t e : *events) cudaEventDestroy(e);
  }
  for (cudaEvent_t e : staging_free_) cudaEventDestroy(e);
  cudaEventDestroy(copies_joined_);
  cudaEventDestroy(recalls_joined_);
  for (int32_t* r : region_) cudaFree(r);
  cudaStreamDestroy(copy_stream_);
  cudaStreamDestroy(recall_stream_);
}

absl::Status TieredDecode::Init(const ModelConfig& config, int num_sms, bool wait_for_recall) {
  config_ = config;
  num_sms_ = num_sms;
  wait_for_recall_ = wait_for_recall;
  KVSERVE_RETURN_IF_ERROR(CudaStatus(
      cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking), "host tier copy stream"));
  KVSERVE_RETURN_IF_ERROR(CudaStatus(
      cudaStreamCreateWithFlags(&recall_stream_, cudaStreamNonBlocking), "recall stream"));
  for (auto* events : {&appended_, &attention_done_, &recall_done_}) {
    events->resize(config.n_layers);
    for (cudaEvent_t& e : *events) {
      KVSERVE_RETURN_IF_ERROR(
          CudaStatus(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "tiered event"));
    }
  }
  for (cudaEvent_t& e : staging_free_) {
    KVSERVE_RETURN_IF_ERROR(
        CudaStatus(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "staging event"));
  }
  for (cudaEvent_t* e : {&copies_joined_, &recalls_joined_}) {
    KVSERVE_RETURN_IF_ERROR(
        CudaStatus(cudaEventCreateWithFlags(e, cudaEventDisableTiming), "join event"));
  }
  recall_recorded_.assign(config.n_layers, 0);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<TieredStatePool>> TieredDecode::PoolFor(
    const kernels::TieredLayout& layout, int page_size) {
  for (const auto& pool : pools_) {
    const kernels::TieredLayout& l = pool->layout();
    if (l.slots == layout.slots && l.sink == layout.sink && l.window == layout.window &&
        pool->page_size() == page_size) {
      return pool;
    }
  }
  KVSERVE_ASSIGN_OR_RETURN(auto pool,
                           TieredStatePool::Create(config_, layout, page_size,
                                                   CeilDiv(config_.context_length, page_size)));
  pools_.push_back(pool);
  return pool;
}

absl::Status TieredDecode::Admit(const SequenceChunk& ch) {
  auto* policy = dynamic_cast<TieredKvPolicy*>(ch.policy);
  if (policy == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "forward: kv policy '", std::string(ch.policy->name()), "' is not a tiered policy"));
  }
  if (policy->page_size() != ch.kv->page_size()) {
    return absl::InvalidArgumentError(absl::StrCat("forward: kv policy page size ",
                                                   policy->page_size(), " but the cache's is ",
                                                   ch.kv->page_size()));
  }
  const BudgetLayout& b = policy->layout();
  if (b.slots <= 0 || b.retrieved() < 0) {
    return absl::InvalidArgumentError("forward: tiered budget smaller than sink + recent");
  }
  // The cache's owner allocates the budget before the first step (tiered_budget_from_first_step):
  // every page of a tiered cache lives in its slots here, so without it the sequence cannot run.
  if (policy->budget().state() == BudgetCache::State::kShort) {
    return absl::ResourceExhaustedError(
        "forward: the KV page pool has no room for the tiered policy's device budget");
  }
  if (!policy->budget().allocated()) {
    return absl::FailedPreconditionError(
        "forward: the tiered policy's device budget was not allocated before the step");
  }
  if (policy->backend_state() == nullptr) {
    KVSERVE_ASSIGN_OR_RETURN(std::shared_ptr<TieredStatePool> pool,
                             PoolFor(LayoutOf(b), policy->page_size()));
    KVSERVE_ASSIGN_OR_RETURN(const int row, pool->Acquire());
    // The handle shares the pool: the policy may outlive this backend's step.
    policy->set_backend_state(
        std::make_unique<TieredSequenceState>(std::move(pool), row, config_.n_layers));
  }
  return absl::OkStatus();
}

absl::Status TieredDecode::EnsureRegion(size_t ints) {
  if (ints <= region_ints_[parity_]) return absl::OkStatus();
  // The other parity's lists may still be read by a queued recall; this one's are not.
  KVSERVE_RETURN_IF_ERROR(CudaStatus(cudaDeviceSynchronize(), "tiered lists"));
  cudaFree(region_[parity_]);
  region_[parity_] = nullptr;
  const size_t want = std::max(ints, 2 * region_ints_[parity_]);
  void* p = nullptr;
  KVSERVE_RETURN_IF_ERROR(CudaStatus(cudaMalloc(&p, want * sizeof(int32_t)), "tiered lists"));
  region_[parity_] = static_cast<int32_t*>(p);
  region_ints_[parity_] = want;
  return absl::OkStatus();
}

absl::Status TieredDecode::Upload(cudaStream_t compute) {
  if (chunks_.empty()) return absl::OkStatus();
  const std::vector<int32_t>& h = host_[parity_];
  KVSERVE_RETURN_IF_ERROR(EnsureRegion(h.size() + device_ints_));
  return CudaStatus(cudaMemcpyAsync(region_[parity_], h.data(), h.size() * sizeof(int32_t),
                                    cudaMemcpyHostToDevice, compute),
                    "tiered lists upload");
}

kernels::PlacementList TieredDecode::List(const ListAt& l, int first) const {
  const size_t units = l.units, cap = l.capacity;
  const size_t u0 = size_t(first) * config_.n_kv_heads;
  int32_t* base = Ints(l.at);
  return {.counts = base + u0,
          .pages = base + units + u0 * cap,
          .slots = base + units + units * cap + u0 * cap,
          .capacity = l.capacity};
}

kernels::RecallParams TieredDecode::Recall(const SideLayer& side, const ListAt& list, int first,
                                           int n, Bf16* arena) const {
  return {.host = {.pages = host_tier_.device_pages(),
                   .layout = kv_,
                   .page_table = Ints(side.host_table) + size_t(first) * side.host_stride,
                   .page_table_stride = side.host_stride},
          .device_pages = arena,
          .budget_pages = Ints(side.targets) + size_t(first) * side.target_stride,
          .slots = side.target_stride,
          .host_lens = Ints(side.host_lens) + first,
          .num_seqs = n,
          .list = List(list, first),
          .max_blocks = 0};
}

kernels::SelectPagesParams TieredDecode::Select(const Group& g, int layer, int first, int n,
                                                const Bf16* q, int q_stride,
                                                bool speculative) const {
  const SideLayer& sl = decode_layers_[layer];
  const int32_t* rows = Ints(state_rows_) + first;
  const auto* flags = reinterpret_cast<const uint8_t*>(Ints(sl.flags)) +
                      static_cast<size_t>(first) * config_.n_kv_heads;
  return {.q = q,
          .q_row_stride = q_stride,
          // The speculative pass reads each sequence's q_t where the drift check kept it.
          .q_rows = speculative ? rows : nullptr,
          .num_seqs = n,
          .n_heads = config_.n_heads,
          .digests = {.data = g.pool->digests(layer),
                      .row_pages = g.pool->max_pages(),
                      .n_kv_heads = config_.n_kv_heads,
                      .head_dim = config_.head_dim},
          .kv_lens = Ints(sl.lens) + first,
          .page_size = g.pool->page_size(),
          .layout = g.pool->layout(),
          .residency = g.pool->residency(layer, rows),
          .mask = g.freekv ? flags : nullptr,
          .invert = speculative,
          .aggregation = kernels::PageScoreAggregation::kMeanSoftmax,
          .recalls = List(speculative ? sl.spec : sl.select, first)};
}

absl::Status TieredDecode::BeforeAppend(int layer, Bf16* arena, cudaStream_t compute) {
  if (recall_recorded_[layer] && wait_for_recall_) {
    KVSERVE_RETURN_IF_ERROR(
        CudaStatus(cudaStreamWaitEvent(compute, recall_done_[layer], 0), "recall wait"));
  }
  if (chunks_.empty()) {
    // Everything this compute stream runs from now on is ordered after that recall.
    recall_recorded_[layer] = 0;
    return absl::OkStatus();
  }
  const int buffer = layer % 2;
  if (staging_recorded_[buffer]) {
    KVSERVE_RETURN_IF_ERROR(
        CudaStatus(cudaStreamWaitEvent(compute, staging_free_[buffer], 0), "staging wait"));
  }
  // Prompts in chunks: their earlier pages from the host tier into staging.
  const SideLayer& pl = prefill_layers_[layer];
  const int F = static_cast<int>(prefill_chunks_.size());
  if (pl.host_list.capacity > 0) {
    KVSERVE_RETURN_IF_ERROR(
        CudaStatus(kernels::LaunchRecallPages(Recall(pl, pl.host_list, 0, F, arena), compute),
                   "staging recall"));
  }
  const SideLayer& dl = decode_layers_[layer];
  const int D = static_cast<int>(decode_chunks_.size());
  if (dl.any_sparse) {
    for (const Group& g : groups_) {
      const kernels::ExtendResidencyParams e{
          .kv_lens = Ints(dl.lens) + g.first,
          .num_seqs = g.count,
          .n_kv_heads = config_.n_kv_heads,
          .page_size = g.pool->page_size(),
          .layout = g.pool->layout(),
          .residency = g.pool->residency(layer, Ints(state_rows_) + g.first),
          .placements = List(dl.extend, g.first)};
      KVSERVE_RETURN_IF_ERROR(
          CudaStatus(kernels::LaunchExtendResidency(e, compute), "extend residency"));
    }
    KVSERVE_RETURN_IF_ERROR(CudaStatus(
        kernels::LaunchRecallPages(Recall(dl, dl.extend, 0, D, arena), compute), "window recall"));
  }
  if (dl.host_list.capacity > 0) {
    KVSERVE_RETURN_IF_ERROR(
        CudaStatus(kernels::LaunchRecallPages(Recall(dl, dl.host_list, 0, D, arena), compute),
                   "dense budget recall"));
  }
  return absl::OkStatus();
}

int TieredDecode::state_rows_in_use() const {
  int rows = 0;
  for (const auto& pool : pools_) rows += pool->rows_in_use();
  return rows;
}

absl::Status TieredDecode::AfterAppend(int layer, Bf16* arena, cudaStream_t compute) {
  if (chunks_.empty()) return absl::OkStatus();
  return BuildDigests(decode_layers_[layer].digests, layer, arena, compute);
}

absl::Status TieredDecode::BuildDigests(const std::vector<DigestLaunch>& launches, int layer,
                                        Bf16* arena, cudaStream_t stream) {
  for (const DigestLaunch& l : launches) {
    const kernels::PageDigestBuildParams d{.pages = arena,
                                           .layout = kv_,
                                           .src_pages = Ints(l.src),
                                           .digest_rows = Ints(l.rows),
                                           .num_pages = l.n,
                                           .kind = l.kind,
                                           .digests = l.pool->digests(layer)};
    KVSERVE_RETURN_IF_ERROR(CudaStatus(kernels::LaunchBuildPageDigests(d, stream), "page digests"));
  }
  return absl::OkStatus();
}

absl::Status TieredDecode::AfterPrefillLayer(int layer, Bf16* arena, cudaStream_t compute) {
  if (chunks_.empty()) return absl::OkStatus();
  const int buffer = layer % 2;
  const bool staged = !prefill_chunks_.empty();
  KVSERVE_RETURN_IF_ERROR(BuildDigests(prefill_layers_[layer].digests, layer, arena, compute));
  const std::vector<kernels::PageRowCopy>& copies = host_writes_[layer];
  if (copies.empty()) return absl::OkStatus();
  // The layer's new rows (decode rows and staged prompt rows) to the host tier, off the compute
  // stream: one launch per layer.
  KVSERVE_RETURN_IF_ERROR(CudaStatus(cudaEventRecord(appended_[layer], compute), "append event"));
  KVSERVE_RETURN_IF_ERROR(
      CudaStatus(cudaStreamWaitEvent(copy_stream_, appended_[layer], 0), "copy wait"));
  const kernels::HostTierWriteParams w{
      .src_pages = arena,
      .dst_pages = host_tier_.device_pages(),
      .layout = kv_,
      .copies = reinterpret_cast<const kernels::PageRowCopy*>(Ints(host_writes_at_[layer])),
      .num_copies = static_cast<int>(copies.size())};
  KVSERVE_RETURN_IF_ERROR(
      CudaStatus(kernels::LaunchHostTierWrite(w, copy_stream_), "host tier write"));
  if (staged) {
    KVSERVE_RETURN_IF_ERROR(
        CudaStatus(cudaEventRecord(staging_free_[buffer], copy_stream_), "staging event"));
    staging_recorded_[buffer] = true;
  }
  return absl::OkStatus();
}

bool TieredDecode::AnyFreeKv() const {
  return std::any_of(groups_.begin(), groups_.end(), [](const Group& g) { return g.freekv; });
}

bool TieredDecode::GraphReady() const {
  if (!wait_for_recall_ || !prefill_chunks_.empty()) return false;
  return std::none_of(decode_layers_.begin(), decode_layers_.end(),
                      [](const SideLayer& dl) { return dl.host_list.capacity > 0; });
}

void TieredDecode::AppendGraphKey(std::vector<int64_t>* key) const {
  auto add = [key](std::initializer_list<int64_t> v) { key->insert(key->end(), v); };
  auto addr = [](const void* p) { return static_cast<int64_t>(reinterpret_cast<intptr_t>(p)); };
  auto list = [&](const ListAt& l) { add({int64_t(l.at), l.capacity, l.units}); };
  add({addr(region_[parity_]), addr(host_tier_.device_pages()), recall_oracle_,
       int64_t(chunks_.size()), int64_t(decode_chunks_.size()), int64_t(state_rows_),
       int64_t(lists_at_), max_slots_});
  for (const Chunk& c : chunks_) add({c.seq, c.index, c.decode});
  for (const Group& g : groups_) {
    // A pool that grew moved its arrays.
    add({g.first, g.count, addr(g.pool), g.pool->capacity(), addr(g.pool->digests(0)), g.freekv,
         std::bit_cast<int32_t>(g.tau)});
  }
  for (size_t l = 0; l < decode_layers_.size(); ++l) {
    const SideLayer& dl = decode_layers_[l];
    add({int64_t(dl.lens), int64_t(dl.host_lens), int64_t(dl.host_table), dl.host_stride,
         int64_t(dl.targets), dl.target_stride, int64_t(dl.flags), dl.any_sparse,
         int64_t(host_writes_at_[l]), int64_t(host_writes_[l].size())});
    for (const ListAt* l2 : {&dl.host_list, &dl.extend, &dl.select, &dl.spec}) list(*l2);
    for (const DigestLaunch& d : dl.digests) {
      add({addr(d.pool), int64_t(d.kind), int64_t(d.src), int64_t(d.rows), d.n});
    }
  }
}

absl::Status TieredDecode::WaitForSideStreams(cudaStream_t compute) {
  for (size_t l = 0; l < recall_recorded_.size(); ++l) {
    if (!recall_recorded_[l]) continue;
    KVSERVE_RETURN_IF_ERROR(
        CudaStatus(cudaStreamWaitEvent(compute, recall_done_[l], 0), "recall wait"));
    recall_recorded_[l] = 0;
  }
  for (int buffer = 0; buffer < 2; ++buffer) {
    if (!staging_recorded_[buffer]) continue;
    KVSERVE_RETURN_IF_ERROR(
        CudaStatus(cudaStreamWaitEvent(compute, staging_free_[buffer], 0), "staging wait"));
    staging_recorded_[buffer] = false;
  }
  return absl::OkStatus();
}

absl::Status TieredDecode::JoinSideStreams(cudaStream_t compute) {
  // Only a stream the capture forked into may be joined: a record on any other is outside it.
  // The copy stream took the layers' host tier writes; the recall stream freekv's recalls.
  const bool copied = std::any_of(host_writes_.begin(), host_writes_.end(),
                                  [](const auto& copies) { return !copies.empty(); });
  if (copied) {
    KVSERVE_RETURN_IF_ERROR(
        CudaStatus(cudaEventRecord(copies_joined_, copy_stream_), "copy join event"));
    KVSERVE_RETURN_IF_ERROR(
        CudaStatus(cudaStreamWaitEvent(compute, copies_joined_, 0), "copy join"));
  }
  if (AnyFreeKv()) {
    KVSERVE_RETURN_IF_ERROR(
        CudaStatus(cudaEventRecord(recalls_joined_, recall_stream_), "recall join event"));
    KVSERVE_RETURN_IF_ERROR(
        CudaStatus(cudaStreamWaitEvent(compute, recalls_joined_, 0), "recall join"));
  }
  std::fill(recall_recorded_.begin(), recall_recorded_.end(), 0);
  return absl::OkStatus();
}

size_t TieredDecode::WorkspaceBytes(int num_seqs) const {
  const kernels::DecodeSplitPlan split = kernels::PlanDecodeSplits(
      num_seqs, config_.n_kv_heads, std::max(1, max_slots_) * kv_.page_size, num_sms_);
  return kernels::DecodeWorkspaceBytes(split, num_seqs, config_.n_heads, config_.head_dim);
}

absl::Status TieredDecode::Attend(int layer, const AttentionRun& run, const Bf16* q, int q_stride,
                                  Bf16* out, int out_stride, float scale, Bf16* arena,
                                  float* workspace, cudaStream_t compute) {
  const int H = config_.n_kv_heads;
  const int cap = std::max(1, max_slots_);
  const int D = static_cast<int>(decode_chunks_.size());
  // The run's sequences are consecutive decode chunks: first..first + n on the decode side.
  const int ci = chunk_of_seq_[run.first_seq];
  if (ci < 0 || !chunks_[ci].decode) {
    return absl::InternalError("forward: a sparse decode run over a chunk not tiered");
  }
  const int first = chunks_[ci].index;
  const int n = run.num_seqs;
  for (int i = 0; i < n; ++i) {
    const int c = chunk_of_seq_[run.first_seq + i];
    if (c < 0 || !chunks_[c].decode || chunks_[c].index != first + i) {
      return absl::InternalError("forward: a sparse decode run over a chunk not tiered");
    }
  }
  const SideLayer& dl = decode_layers_[layer];
  int32_t* counts = Ints(lists_at_);
  int32_t* pages = counts + size_t(D) * H;
  int32_t* rows = pages + size_t(D) * H * cap;
  const int32_t* state_rows = Ints(state_rows_);
  // Each group's part of the run: its drift check (freekv), then its selection (quest: every
  // head with this query; freekv: the heads the drift mask flags).
  auto parts = [&](const std::function<absl::Status(const Group&, int, int)>& fn) {
    for (const Group& g : groups_) {
      const int a = std::max(g.first, first), b = std::min(g.first + g.count, first + n);
      if (a < b) KVSERVE_RETURN_IF_ERROR(fn(g, a, b - a));
    }
    return absl::OkStatus();
  };
  KVSERVE_RETURN_IF_ERROR(parts([&](const Group& g, int a, int m) -> absl::Status {
    const Bf16* q_part = q + static_cast<size_t>(a - first) * q_stride;
    if (g.freekv) {
      const kernels::QueryDriftParams d{
          .q = q_part,
          .q_row_stride = q_stride,
          .last_q = g.pool->last_q(layer),
          .has_last_q = g.pool->has_last_q(layer),
          .state_rows = state_rows + a,
          .num_seqs = m,
          .n_heads = config_.n_heads,
          .n_kv_heads = H,
          .head_dim = config_.head_dim,
          .kv_lens = Ints(dl.lens) + a,
          .page_size = g.pool->page_size(),
          .slots = g.pool->layout().slots,
          .tau = g.tau,
          .flags = reinterpret_cast<uint8_t*>(Ints(dl.flags)) + static_cast<size_t>(a) * H,
          .checks = g.pool->counters(0),
          .corrections = g.pool->counters(1),
          .checked_steps = g.pool->counters(2),
          .corrected_steps = g.pool->counters(3)};
      KVSERVE_RETURN_IF_ERROR(CudaStatus(kernels::LaunchQueryDrift(d, compute), "query drift"));
    }
    return CudaStatus(
        kernels::LaunchSelectPages(Select(g, layer, a, m, q_part, q_stride, false), compute),
        "select pages");
  }));
  if (!recall_oracle_) {
    KVSERVE_RETURN_IF_ERROR(CudaStatus(
        kernels::LaunchRecallPages(Recall(dl, dl.select, first, n, arena), compute), "recall"));
  }
  KVSERVE_RETURN_IF_ERROR(parts([&](const Group& g, int a, int m) -> absl::Status {
    const kernels::EmitPageListsParams e{
        .kv_lens = Ints(dl.lens) + a,
        .num_seqs = m,
        .n_kv_heads = H,
        .page_size = g.pool->page_size(),
        .layout = g.pool->layout(),
        .slot_page = g.pool->residency(layer, nullptr).slot_page,
        .state_rows = state_rows + a,
        .budget_pages = Ints(dl.targets) + size_t(a) * dl.target_stride,
        .budget_stride = dl.target_stride,
        .dense_table = Ints(dl.targets) + size_t(a) * dl.target_stride,
        .dense_stride = dl.target_stride,
        .counts = counts + size_t(a) * H,
        .pages = pages + size_t(a) * H * cap,
        .rows = rows + size_t(a) * H * cap,
        .capacity = cap};
    return CudaStatus(kernels::LaunchEmitPageLists(e, compute), "page lists");
  }));
  const size_t u0 = size_t(first) * H;
  const kernels::SparseDecodeAttentionParams a{.q = q,
                                               .q_row_stride = q_stride,
                                               .out = out,
                                               .out_row_stride = out_stride,
                                               .num_seqs = n,
                                               .n_heads = config_.n_heads,
                                               .pages = arena,
                                               .layout = kv_,
                                               .lists = {.counts = counts + u0,
                                                         .pages = pages + u0 * cap,
                                                         .rows = rows + u0 * cap,
                                                         .capacity = cap},
                                               .max_list_pages = cap,
                                               .scale = scale};
  const kernels::DecodeSplitPlan split =
      kernels::PlanDecodeSplits(n, H, cap * kv_.page_size, num_sms_);
  return CudaStatus(kernels::LaunchSparseDecodeAttention(a, split, workspace, compute),
                    "sparse decode attention");
}

absl::Status TieredDecode::AfterAttention(int layer, Bf16* arena, cudaStream_t compute) {
  if (!AnyFreeKv()) return absl::OkStatus();
  // FreeKV: select for step t+1 with q_t (kept in last_q by the drift check) and gather on the
  // recall stream, after everything the compute stream issued so far (this attention reads the
  // victim slots; the digests and q_t are written), research/freekv.md §10.1.
  KVSERVE_RETURN_IF_ERROR(
      CudaStatus(cudaEventRecord(attention_done_[layer], compute), "attention event"));
  KVSERVE_RETURN_IF_ERROR(CudaStatus(cudaStreamWaitEvent(recall_stream_, attention_done_[layer], 0),
                                     "recall stream wait"));
  const int q_stride = config_.n_heads * config_.head_dim;
  for (const Group& g : groups_) {
    if (!g.freekv) continue;
    KVSERVE_RETURN_IF_ERROR(
        CudaStatus(kernels::LaunchSelectPages(
                       Select(g, layer, g.first, g.count, g.pool->last_q(layer), q_stride, true),
                       recall_stream_),
                   "speculative select"));
  }
  if (!recall_oracle_) {
    // One gather for every decode chunk; the quest chunks' lists are empty.
    const SideLayer& dl = decode_layers_[layer];
    KVSERVE_RETURN_IF_ERROR(CudaStatus(
        kernels::LaunchRecallPages(
            Recall(dl, dl.spec, 0, static_cast<int>(decode_chunks_.size()), arena), recall_stream_),
        "speculative recall"));
  }
  KVSERVE_RETURN_IF_ERROR(
      CudaStatus(cudaEventRecord(recall_done_[layer], recall_stream_), "recall event"));
  recall_recorded_[layer] = 1;
  return absl::OkStatus();
}

absl::Status TieredDecode::Finish(std::span<const int> index, StepOutput* out) {
  KVSERVE_RETURN_IF_ERROR(CudaStatus(cudaStreamSynchronize(copy_stream_), "host tier writes"));
  const int H = config_.n_kv_heads;
  auto sum_counts = [&](const std::vector<int32_t>& ints, size_t at) {
    int64_t n = 0;
    for (int h = 0; h < H; ++h) n += ints[at + h];
    return n;
  };
  // The previous step's speculative recalls are done: this step's compute waited for them.
  std::vector<int64_t> speculated(chunks_.size(), 0);
  if (!speculated_.empty()) {
    size_t end = 0;
    for (const Speculated& s : speculated_) {
      for (size_t at : s.counts_at) end = std::max(end, at + H);
    }
    std::vector<int32_t> prev(end);
    KVSERVE_RETURN_IF_ERROR(CudaStatus(cudaMemcpy(prev.data(), region_[parity_ ^ 1],
                                                  end * sizeof(int32_t), cudaMemcpyDeviceToHost),
                                       "speculative counts"));
    for (const Speculated& s : speculated_) {
      for (size_t i = 0; i < chunks_.size(); ++i) {
        if (chunks_[i].state != s.state) continue;
        for (size_t at : s.counts_at) speculated[i] += sum_counts(prev, at);
      }
    }
    speculated_.clear();
  }
  if (chunks_.empty()) return absl::OkStatus();
  const size_t total = host_[parity_].size() + device_ints_;
  std::vector<int32_t> now(total);
  KVSERVE_RETURN_IF_ERROR(CudaStatus(
      cudaMemcpy(now.data(), region_[parity_], total * sizeof(int32_t), cudaMemcpyDeviceToHost),
      "tiered counts"));
  // Each pool's correction counters, once.
  std::map<const TieredStatePool*, std::vector<int32_t>> counters;
  for (const Group& g : groups_) {
    if (!g.freekv || counters.contains(g.pool)) continue;
    KVSERVE_ASSIGN_OR_RETURN(counters[g.pool], g.pool->ReadCounters());
  }
  for (size_t i = 0; i < chunks_.size(); ++i) {
    Chunk& c = chunks_[i];
    DeviceKvCounts counts;
    counts.recalled_pages = speculated[i];
    for (size_t l = 0; l < c.layers.size(); ++l) {
      c.state->dense_resident[l] = c.layers[l].dense_resident_after;
    }
    if (c.decode) {
      counts.decode_steps = 1;
      Speculated spec{.state = c.state};
      const size_t unit = size_t(c.index) * H;
      for (size_t l = 0; l < c.layers.size(); ++l) {
        if (!c.layers[l].sparse) continue;
        counts.recalled_pages += sum_counts(now, decode_layers_[l].select.at + unit);
        if (c.freekv) spec.counts_at.push_back(decode_layers_[l].spec.at + unit);
      }
      if (!spec.counts_at.empty()) speculated_.push_back(std::move(spec));
      if (c.freekv) {
        const TieredStatePool& pool = c.state->pool();
        const std::vector<int32_t>& device = counters.at(&pool);
        int64_t delta[TieredStatePool::kCounters];
        for (int k = 0; k < TieredStatePool::kCounters; ++k) {
          const int32_t now_k = device[size_t(k) * pool.capacity() + c.state->row()];
          delta[k] = now_k - c.state->reported[k];
          c.state->reported[k] = now_k;
        }
        counts.checks = delta[0];
        counts.corrections = delta[1];
        counts.layer_steps = delta[2];
        counts.steps_corrected = delta[3];
      }
    }
    // One recalled (page, KV head): its keys and values in bf16, as the host tier holds them.
    counts.recalled_bytes = counts.recalled_pages * 2 * c.state->page_size() * config_.head_dim *
                            static_cast<int64_t>(sizeof(Bf16));
    out->kv_counts[index[c.seq]] = counts;
  }
  return absl::OkStatus();
}

std::vector<int32_t> TieredDecode::ResidentPages(const KvPolicy& policy, int layer, int kv_head,
                                                 int length) {
  const auto* st = dynamic_cast<const TieredSequenceState*>(policy.backend_state());
  if (st == nullptr) return {};
  const kernels::TieredLayout& lay = st->layout();
  if (CeilDiv(length, st->page_size()) <= lay.slots) return {};
  cudaDeviceSynchronize();
  const TieredStatePool& pool = st->pool();
  const kernels::ResidencyState r = pool.residency(layer, nullptr);
  std::vector<int32_t> slot_page(lay.slots);
  cudaMemcpy(slot_page.data(),
             r.slot_page + r.Unit(st->row(), kv_head, pool.n_kv_heads()) * lay.slots,
             lay.slots * sizeof(int32_t), cudaMemcpyDeviceToHost);
  std::vector<int32_t> pages;
  for (int32_t p : slot_page) {
    if (p >= 0) pages.push_back(p);
  }
  return pages;
}

}  // namespace kvserve::cuda
