#include "engine/runtime/cuda/tiered_decode.h"

#include <algorithm>
#include <numeric>

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
  for (int32_t* r : region_) cudaFree(r);
  cudaFree(identity_);
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
  recall_recorded_.assign(config.n_layers, 0);
  return absl::OkStatus();
}

absl::Status TieredDecode::EnsureIdentity(int pages) {
  if (pages <= identity_pages_) return absl::OkStatus();
  if (identity_ != nullptr) {
    KVSERVE_RETURN_IF_ERROR(CudaStatus(cudaDeviceSynchronize(), "digest table"));
    cudaFree(identity_);
    identity_ = nullptr;
  }
  std::vector<int32_t> rows(pages);
  std::iota(rows.begin(), rows.end(), 0);
  void* p = nullptr;
  KVSERVE_RETURN_IF_ERROR(CudaStatus(cudaMalloc(&p, pages * sizeof(int32_t)), "digest table"));
  identity_ = static_cast<int32_t*>(p);
  identity_pages_ = pages;
  return CudaStatus(
      cudaMemcpy(identity_, rows.data(), pages * sizeof(int32_t), cudaMemcpyHostToDevice),
      "digest table");
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
    const int max_pages = CeilDiv(config_.context_length, policy->page_size());
    KVSERVE_RETURN_IF_ERROR(EnsureIdentity(max_pages));
    std::vector<int32_t> budget;
    for (int l = 0; l < config_.n_layers; ++l) {
      const std::span<const int32_t> pages = policy->budget().layer_pages(l);
      budget.insert(budget.end(), pages.begin(), pages.end());
    }
    KVSERVE_ASSIGN_OR_RETURN(
        auto state,
        TieredSequenceState::Create(config_, LayoutOf(b), policy->page_size(), max_pages, budget));
    policy->set_backend_state(std::move(state));
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

kernels::PlacementList TieredDecode::List(const ListAt& l) const {
  return {.counts = Ints(l.at),
          .pages = Ints(l.at + config_.n_kv_heads),
          .slots = Ints(l.at + config_.n_kv_heads + size_t(config_.n_kv_heads) * l.capacity),
          .capacity = l.capacity};
}

kernels::RecallParams TieredDecode::Recall(const Chunk& c, int layer, const ListAt& list,
                                           const int32_t* targets, int slots, Bf16* arena) const {
  const LayerPlan& lp = c.layers[layer];
  return {.host = {.pages = host_tier_.device_pages(),
                   .layout = kv_,
                   .page_table = Ints(lp.host_table),
                   .page_table_stride = lp.host_stride},
          .device_pages = arena,
          .budget_pages = targets,
          .slots = slots,
          .host_lens = Ints(lp.lens + 1),
          .num_seqs = 1,
          .list = List(list),
          .max_blocks = 0};
}

kernels::SelectPagesParams TieredDecode::Select(const Chunk& c, int layer, const Bf16* q,
                                                int q_stride, const ListAt& list,
                                                bool speculative) const {
  const LayerPlan& lp = c.layers[layer];
  const TieredSequenceState& st = *c.state;
  const bool masked = c.freekv;
  return {.q = q,
          .q_row_stride = q_stride,
          .num_seqs = 1,
          .n_heads = config_.n_heads,
          .digests = {.data = st.digests(layer),
                      .table = identity_,
                      .table_stride = st.max_pages(),
                      .n_kv_heads = config_.n_kv_heads,
                      .head_dim = config_.head_dim},
          .kv_lens = Ints(lp.lens),
          .page_size = st.page_size(),
          .layout = st.layout(),
          .residency = st.residency(layer),
          .mask = masked ? reinterpret_cast<const uint8_t*>(Ints(lp.flags)) : nullptr,
          .invert = speculative,
          .aggregation = kernels::PageScoreAggregation::kMeanSoftmax,
          .recalls = List(list)};
}

absl::Status TieredDecode::BeforeAppend(int layer, Bf16* arena, cudaStream_t compute) {
  if (recall_recorded_[layer] && wait_for_recall_) {
    KVSERVE_RETURN_IF_ERROR(
        CudaStatus(cudaStreamWaitEvent(compute, recall_done_[layer], 0), "recall wait"));
  }
  if (chunks_.empty()) return absl::OkStatus();
  const int buffer = layer % 2;
  if (staging_recorded_[buffer]) {
    KVSERVE_RETURN_IF_ERROR(
        CudaStatus(cudaStreamWaitEvent(compute, staging_free_[buffer], 0), "staging wait"));
  }
  for (Chunk& c : chunks_) {
    const LayerPlan& lp = c.layers[layer];
    const TieredSequenceState& st = *c.state;
    if (!c.decode) {
      if (lp.host_list.capacity == 0) continue;
      KVSERVE_RETURN_IF_ERROR(CudaStatus(
          kernels::LaunchRecallPages(
              Recall(c, layer, lp.host_list, Ints(lp.target), lp.n_targets, arena), compute),
          "staging recall"));
      continue;
    }
    if (lp.sparse) {
      const kernels::ExtendResidencyParams e{.kv_lens = Ints(lp.lens),
                                             .num_seqs = 1,
                                             .n_kv_heads = config_.n_kv_heads,
                                             .page_size = st.page_size(),
                                             .layout = st.layout(),
                                             .residency = st.residency(layer),
                                             .placements = List(lp.extend)};
      KVSERVE_RETURN_IF_ERROR(
          CudaStatus(kernels::LaunchExtendResidency(e, compute), "extend residency"));
      KVSERVE_RETURN_IF_ERROR(CudaStatus(
          kernels::LaunchRecallPages(
              Recall(c, layer, lp.extend, st.budget_pages(layer), st.layout().slots, arena),
              compute),
          "window recall"));
    } else if (lp.host_list.capacity > 0) {
      KVSERVE_RETURN_IF_ERROR(CudaStatus(
          kernels::LaunchRecallPages(
              Recall(c, layer, lp.host_list, st.budget_pages(layer), st.layout().slots, arena),
              compute),
          "dense budget recall"));
    }
  }
  return absl::OkStatus();
}

absl::Status TieredDecode::AfterAppend(int layer, Bf16* arena, cudaStream_t compute) {
  for (const Chunk& c : chunks_) {
    const LayerPlan& lp = c.layers[layer];
    if (!c.decode || lp.n_digests == 0) continue;
    KVSERVE_RETURN_IF_ERROR(BuildDigests(c, layer, arena, compute));
  }
  return absl::OkStatus();
}

absl::Status TieredDecode::BuildDigests(const Chunk& c, int layer, Bf16* arena,
                                        cudaStream_t compute) {
  const LayerPlan& lp = c.layers[layer];
  const kernels::PageDigestBuildParams d{.pages = arena,
                                         .layout = kv_,
                                         .src_pages = Ints(lp.digest_src),
                                         .digest_rows = Ints(lp.digest_rows),
                                         .num_pages = lp.n_digests,
                                         .kind = c.digest,
                                         .digests = c.state->digests(layer)};
  return CudaStatus(kernels::LaunchBuildPageDigests(d, compute), "page digests");
}

absl::Status TieredDecode::AfterPrefillLayer(int layer, Bf16* arena, cudaStream_t compute) {
  if (chunks_.empty()) return absl::OkStatus();
  const int buffer = layer % 2;
  bool staged = false;
  for (const Chunk& c : chunks_) {
    const LayerPlan& lp = c.layers[layer];
    if (c.decode) continue;
    staged = true;
    if (lp.n_digests == 0) continue;
    KVSERVE_RETURN_IF_ERROR(BuildDigests(c, layer, arena, compute));
  }
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
  int32_t* counts = Ints(lists_at_);
  int32_t* pages = counts + size_t(run.num_seqs) * H;
  int32_t* rows = pages + size_t(run.num_seqs) * H * cap;
  for (int i = 0; i < run.num_seqs; ++i) {
    const int ci = chunk_of_seq_[run.first_seq + i];
    if (ci < 0 || !chunks_[ci].decode) {
      return absl::InternalError("forward: a sparse decode run over a chunk not tiered");
    }
    const Chunk& c = chunks_[ci];
    const LayerPlan& lp = c.layers[layer];
    const TieredSequenceState& st = *c.state;
    const Bf16* q_row = q + static_cast<size_t>(i) * q_stride;
    if (c.freekv) {
      const kernels::QueryDriftParams d{.q = q_row,
                                        .q_row_stride = q_stride,
                                        .last_q = st.last_q(layer),
                                        .has_last_q = st.has_last_q(layer),
                                        .num_seqs = 1,
                                        .n_heads = config_.n_heads,
                                        .n_kv_heads = H,
                                        .head_dim = config_.head_dim,
                                        .kv_lens = Ints(lp.lens),
                                        .page_size = st.page_size(),
                                        .slots = st.layout().slots,
                                        .tau = c.tau,
                                        .flags = reinterpret_cast<uint8_t*>(Ints(lp.flags)),
                                        .checks = st.checks(),
                                        .corrections = st.corrections(),
                                        .checked_steps = st.checked_steps(),
                                        .corrected_steps = st.corrected_steps()};
      KVSERVE_RETURN_IF_ERROR(CudaStatus(kernels::LaunchQueryDrift(d, compute), "query drift"));
    }
    // Quest selects every head with this query; FreeKV the heads the drift mask flags.
    KVSERVE_RETURN_IF_ERROR(CudaStatus(
        kernels::LaunchSelectPages(Select(c, layer, q_row, q_stride, lp.select, false), compute),
        "select pages"));
    if (!recall_oracle_) {
      KVSERVE_RETURN_IF_ERROR(CudaStatus(
          kernels::LaunchRecallPages(
              Recall(c, layer, lp.select, st.budget_pages(layer), st.layout().slots, arena),
              compute),
          "recall"));
    }
    const kernels::EmitPageListsParams e{.kv_lens = Ints(lp.lens),
                                         .num_seqs = 1,
                                         .n_kv_heads = H,
                                         .page_size = st.page_size(),
                                         .layout = st.layout(),
                                         .slot_page = st.residency(layer).slot_page,
                                         .budget_pages = st.budget_pages(layer),
                                         .dense_table = st.budget_pages(layer),
                                         .dense_stride = st.layout().slots,
                                         .counts = counts + size_t(i) * H,
                                         .pages = pages + size_t(i) * H * cap,
                                         .rows = rows + size_t(i) * H * cap,
                                         .capacity = cap};
    KVSERVE_RETURN_IF_ERROR(CudaStatus(kernels::LaunchEmitPageLists(e, compute), "page lists"));
  }
  const kernels::SparseDecodeAttentionParams a{
      .q = q,
      .q_row_stride = q_stride,
      .out = out,
      .out_row_stride = out_stride,
      .num_seqs = run.num_seqs,
      .n_heads = config_.n_heads,
      .pages = arena,
      .layout = kv_,
      .lists = {.counts = counts, .pages = pages, .rows = rows, .capacity = cap},
      .max_list_pages = cap,
      .scale = scale};
  const kernels::DecodeSplitPlan split =
      kernels::PlanDecodeSplits(run.num_seqs, H, cap * kv_.page_size, num_sms_);
  return CudaStatus(kernels::LaunchSparseDecodeAttention(a, split, workspace, compute),
                    "sparse decode attention");
}

absl::Status TieredDecode::AfterAttention(int layer, Bf16* arena, cudaStream_t compute) {
  bool any = false;
  for (const Chunk& c : chunks_) any |= c.decode && c.freekv;
  if (!any) return absl::OkStatus();
  // FreeKV: select for step t+1 with q_t (kept in last_q by the drift check) and gather on the
  // recall stream, after everything the compute stream issued so far (this attention reads the
  // victim slots; the digests and q_t are written), research/freekv.md §10.1.
  KVSERVE_RETURN_IF_ERROR(
      CudaStatus(cudaEventRecord(attention_done_[layer], compute), "attention event"));
  KVSERVE_RETURN_IF_ERROR(CudaStatus(cudaStreamWaitEvent(recall_stream_, attention_done_[layer], 0),
                                     "recall stream wait"));
  const int q_stride = config_.n_heads * config_.head_dim;
  for (const Chunk& c : chunks_) {
    if (!c.decode || !c.freekv) continue;
    const LayerPlan& lp = c.layers[layer];
    const TieredSequenceState& st = *c.state;
    KVSERVE_RETURN_IF_ERROR(
        CudaStatus(kernels::LaunchSelectPages(
                       Select(c, layer, st.last_q(layer), q_stride, lp.spec, true), recall_stream_),
                   "speculative select"));
    if (recall_oracle_) continue;
    KVSERVE_RETURN_IF_ERROR(
        CudaStatus(kernels::LaunchRecallPages(
                       Recall(c, layer, lp.spec, st.budget_pages(layer), st.layout().slots, arena),
                       recall_stream_),
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
      for (size_t at : s.layer_counts) end = std::max(end, at + H);
    }
    std::vector<int32_t> prev(end);
    KVSERVE_RETURN_IF_ERROR(CudaStatus(cudaMemcpy(prev.data(), region_[parity_ ^ 1],
                                                  end * sizeof(int32_t), cudaMemcpyDeviceToHost),
                                       "speculative counts"));
    for (const Speculated& s : speculated_) {
      for (size_t i = 0; i < chunks_.size(); ++i) {
        if (chunks_[i].state != s.state) continue;
        for (size_t at : s.layer_counts) speculated[i] += sum_counts(prev, at);
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
      for (const LayerPlan& lp : c.layers) {
        if (lp.sparse) counts.recalled_pages += sum_counts(now, lp.select.at);
        if (lp.sparse && c.freekv) spec.layer_counts.push_back(lp.spec.at);
      }
      if (!spec.layer_counts.empty()) speculated_.push_back(std::move(spec));
      if (c.freekv) {
        int32_t device[TieredSequenceState::kCounters];
        KVSERVE_RETURN_IF_ERROR(CudaStatus(
            cudaMemcpy(device, c.state->checks(), sizeof(device), cudaMemcpyDeviceToHost),
            "correction counts"));
        int64_t delta[TieredSequenceState::kCounters];
        for (int k = 0; k < TieredSequenceState::kCounters; ++k) {
          delta[k] = device[k] - c.state->reported[k];
          c.state->reported[k] = device[k];
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
  std::vector<int32_t> slot_page(lay.slots);
  cudaMemcpy(slot_page.data(), st->residency(layer).slot_page + size_t(kv_head) * lay.slots,
             lay.slots * sizeof(int32_t), cudaMemcpyDeviceToHost);
  std::vector<int32_t> pages;
  for (int32_t p : slot_page) {
    if (p >= 0) pages.push_back(p);
  }
  return pages;
}

}  // namespace kvserve::cuda
