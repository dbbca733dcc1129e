// kvserve-tiered-kernel-bench: the FreeKV/Quest device kernels alone on one layer of a model's
// shape (default Llama-3.1-8B: 32 query / 8 KV heads, head_dim 128, pages of 32), as JSON lines:
//  - "tiered_recall": the zero-copy gather from the pinned host tier, effective GB/s of the
//    (page, KV head) chunks it moves, at several grid sizes (FreeKV needs ~8-16 SMs), beside
//    "tiered_recall_memcpy", the reference code's one cudaMemcpyAsync per chunk (research/freekv.md
//    §9.3: ~45-50 GB/s against ~5 GB/s on an H100);
//  - "tiered_decode": page-sparse decode attention over a budget of pages against the dense
//    decode kernel over the whole context, and the step's other kernels (query drift, selection
//    over every candidate page, page lists), per layer, at each batch size.
// Synthetic data; a figure compares only with one from the same run.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iostream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "kernels/decode_attention.h"
#include "kernels/host_tier.h"
#include "kernels/page_recall.h"
#include "kernels/page_select.h"
#include "kernels/query_drift.h"
#include "kernels/sparse_decode_attention.h"
#include "nlohmann/json.hpp"

namespace kvserve::bench {
namespace {

using kernels::Bf16;

struct Options {
  int n_heads = 32;
  int n_kv_heads = 8;
  int head_dim = 128;
  int page_size = 32;
  int context = 32768;
  int budget = 2048;
  int sink = 512;
  int recent = 512;
  std::vector<int> batches = {1, 8, 32};
  std::vector<int> recall_blocks = {8, 16, 32, 64, 0};
  double host_gib = 2.0;
  int repeats = 20;
};

struct Failure {
  std::string what;
};

void Check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw Failure{std::string(what) + ": " + cudaGetErrorString(err)};
}

// Device memory freed on scope exit.
template <typename T>
struct Device {
  explicit Device(size_t count) {
    Check(cudaMalloc(reinterpret_cast<void**>(&ptr), std::max<size_t>(count, 1) * sizeof(T)),
          "cudaMalloc");
  }
  Device(const std::vector<T>& host) : Device(host.size()) {
    Check(cudaMemcpy(ptr, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), "upload");
  }
  ~Device() { cudaFree(ptr); }
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;
  T* ptr = nullptr;
};

// Median milliseconds per launch of `launch` over `repeats` samples of `inner` launches.
double TimeMs(cudaStream_t stream, int repeats, int inner, const std::function<void()>& launch) {
  cudaEvent_t start, stop;
  Check(cudaEventCreate(&start), "event");
  Check(cudaEventCreate(&stop), "event");
  for (int i = 0; i < 3; ++i) launch();
  std::vector<float> samples;
  for (int r = 0; r < repeats; ++r) {
    Check(cudaEventRecord(start, stream), "record");
    for (int i = 0; i < inner; ++i) launch();
    Check(cudaEventRecord(stop, stream), "record");
    Check(cudaEventSynchronize(stop), "sync");
    float ms = 0;
    Check(cudaEventElapsedTime(&ms, start, stop), "elapsed");
    samples.push_back(ms / inner);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

std::vector<Bf16> RandomBf16(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<Bf16> v(n);
  for (Bf16& x : v) x = kernels::ToBf16(normal(rng));
  return v;
}

void Emit(const nlohmann::json& common, nlohmann::json line) {
  line.update(common);
  std::cout << line.dump() << std::endl;
}

kernels::TieredLayout Layout(const Options& o) {
  return {.slots = o.budget / o.page_size,
          .sink = o.sink / o.page_size,
          .window = std::max(1, o.recent / o.page_size)};
}

// The gather at its worst churn (every retrieved page new) for `batch` sequences.
void RecallBench(const Options& o, int batch, cudaStream_t stream, const nlohmann::json& common) {
  const kernels::PagedKvLayout l{o.n_kv_heads, o.page_size, o.head_dim};
  const kernels::TieredLayout lay = Layout(o);
  const int k = lay.retrieved();
  const size_t page_bytes = l.PageElements() * sizeof(Bf16);
  const int64_t host_pages =
      std::max<int64_t>(1, static_cast<int64_t>(o.host_gib * (1 << 30)) / page_bytes);
  kernels::HostTierMemory tier;
  Check(kernels::AllocateHostTier(l, host_pages, &tier), "cudaHostAlloc");
  std::mt19937 rng(batch);
  std::uniform_int_distribution<int64_t> any_page(0, host_pages - 1);
  const int max_pages = o.context / o.page_size;
  std::vector<int32_t> table(static_cast<size_t>(batch) * max_pages);
  for (int32_t& t : table) t = static_cast<int32_t>(any_page(rng));
  std::vector<int32_t> budget(static_cast<size_t>(batch) * lay.slots);
  std::iota(budget.begin(), budget.end(), 0);
  const int units = batch * o.n_kv_heads;
  std::vector<int32_t> counts(units, k), pages(static_cast<size_t>(units) * k), slots(pages.size());
  std::uniform_int_distribution<int> any_candidate(lay.sink, max_pages - lay.window - 1);
  for (size_t e = 0; e < pages.size(); ++e) {
    pages[e] = any_candidate(rng);
    slots[e] = lay.sink + static_cast<int>(e % k);
  }
  std::vector<int32_t> lens(batch, o.context);
  Device<Bf16> arena(budget.size() * l.PageElements());
  Device<int32_t> d_table(table), d_budget(budget), d_counts(counts), d_pages(pages),
      d_slots(slots), d_lens(lens);
  const double chunk_bytes = 2.0 * o.page_size * o.head_dim * sizeof(Bf16);
  const double bytes = chunk_bytes * units * k;
  for (int blocks : o.recall_blocks) {
    const kernels::RecallParams p{
        .host = {.pages = tier.device,
                 .layout = l,
                 .page_table = d_table.ptr,
                 .page_table_stride = max_pages},
        .device_pages = arena.ptr,
        .budget_pages = d_budget.ptr,
        .slots = lay.slots,
        .host_lens = d_lens.ptr,
        .num_seqs = batch,
        .list = {.counts = d_counts.ptr, .pages = d_pages.ptr, .slots = d_slots.ptr, .capacity = k},
        .max_blocks = blocks};
    const double ms = TimeMs(stream, o.repeats, 1,
                             [&] { Check(kernels::LaunchRecallPages(p, stream), "recall"); });
    Emit(common, {{"bench", "tiered_recall"},
                  {"batch", batch},
                  {"chunks", units * k},
                  {"chunk_bytes", chunk_bytes},
                  {"max_blocks", blocks},
                  {"ms", ms},
                  {"gb_s", bytes / (ms * 1e-3) / 1e9}});
  }
  // The reference design: one cudaMemcpyAsync per (page, head) chunk.
  const double ms = TimeMs(stream, std::max(3, o.repeats / 4), 1, [&] {
    for (int u = 0; u < units; ++u) {
      const int seq = u / o.n_kv_heads, head = u % o.n_kv_heads;
      for (int i = 0; i < k; ++i) {
        const size_t e = static_cast<size_t>(u) * k + i;
        const int32_t src = table[static_cast<size_t>(seq) * max_pages + pages[e]];
        const int32_t dst = budget[static_cast<size_t>(seq) * lay.slots + slots[e]];
        Check(cudaMemcpyAsync(arena.ptr + l.RowOffset(dst, head, 0, 0),
                              tier.host + l.RowOffset(src, head, 0, 0),
                              static_cast<size_t>(chunk_bytes), cudaMemcpyHostToDevice, stream),
              "memcpy");
      }
    }
  });
  Emit(common, {{"bench", "tiered_recall_memcpy"},
                {"batch", batch},
                {"chunks", units * k},
                {"chunk_bytes", chunk_bytes},
                {"ms", ms},
                {"gb_s", bytes / (ms * 1e-3) / 1e9}});
  Check(cudaStreamSynchronize(stream), "sync");
  kernels::FreeHostTier(&tier);
}

// One decode layer's FreeKV kernels against dense attention over the whole context.
void DecodeBench(const Options& o, int batch, int sms, cudaStream_t stream,
                 const nlohmann::json& common) {
  const kernels::PagedKvLayout l{o.n_kv_heads, o.page_size, o.head_dim};
  const kernels::TieredLayout lay = Layout(o);
  const int max_pages = o.context / o.page_size;
  const int units = batch * o.n_kv_heads;
  std::mt19937 rng(100 + batch);
  // The dense cache: each sequence's context in its own pages.
  Device<Bf16> arena(static_cast<size_t>(batch) * max_pages * l.PageElements());
  Check(cudaMemset(arena.ptr, 0,
                   static_cast<size_t>(batch) * max_pages * l.PageElements() * sizeof(Bf16)),
        "memset");
  std::vector<int32_t> table(static_cast<size_t>(batch) * max_pages);
  std::iota(table.begin(), table.end(), 0);
  std::vector<int32_t> lens(batch, o.context);
  Device<int32_t> d_table(table), d_lens(lens);
  const std::vector<Bf16> q = RandomBf16(static_cast<size_t>(batch) * o.n_heads * o.head_dim, rng);
  Device<Bf16> d_q(q), d_last(q), d_out(q.size());
  const kernels::PagedKvCache cache{
      .pages = arena.ptr, .layout = l, .page_table = d_table.ptr, .page_table_stride = max_pages};
  const float scale = 1.0f / std::sqrt(static_cast<float>(o.head_dim));

  const kernels::DecodeSplitPlan dense_plan =
      kernels::PlanDecodeSplits(batch, o.n_kv_heads, o.context, sms);
  Device<float> dense_ws(
      kernels::DecodeWorkspaceBytes(dense_plan, batch, o.n_heads, o.head_dim) / 4 + 1);
  const kernels::DecodeAttentionParams dense{.q = d_q.ptr,
                                             .q_row_stride = o.n_heads * o.head_dim,
                                             .out = d_out.ptr,
                                             .out_row_stride = o.n_heads * o.head_dim,
                                             .kv_lens = d_lens.ptr,
                                             .num_seqs = batch,
                                             .max_kv_len = o.context,
                                             .cache = cache,
                                             .n_heads = o.n_heads,
                                             .scale = scale};
  const double dense_ms = TimeMs(stream, o.repeats, 1, [&] {
    Check(kernels::LaunchDecodeAttention(dense, dense_plan, dense_ws.ptr, stream), "dense");
  });

  // Sparse: each unit's budget of pages (the first `slots` of its sequence stand in for them).
  std::vector<int32_t> counts(units, lay.slots), list_pages(static_cast<size_t>(units) * lay.slots),
      list_rows(list_pages.size(), o.page_size);
  for (int u = 0; u < units; ++u) {
    for (int i = 0; i < lay.slots; ++i)
      list_pages[static_cast<size_t>(u) * lay.slots + i] = (u / o.n_kv_heads) * max_pages + i;
  }
  Device<int32_t> d_counts(counts), d_list_pages(list_pages), d_list_rows(list_rows);
  const kernels::DecodeSplitPlan sparse_plan =
      kernels::PlanDecodeSplits(batch, o.n_kv_heads, lay.slots * o.page_size, sms);
  Device<float> sparse_ws(
      kernels::DecodeWorkspaceBytes(sparse_plan, batch, o.n_heads, o.head_dim) / 4 + 1);
  const kernels::SparseDecodeAttentionParams sparse{.q = d_q.ptr,
                                                    .q_row_stride = o.n_heads * o.head_dim,
                                                    .out = d_out.ptr,
                                                    .out_row_stride = o.n_heads * o.head_dim,
                                                    .num_seqs = batch,
                                                    .n_heads = o.n_heads,
                                                    .pages = arena.ptr,
                                                    .layout = l,
                                                    .lists = {.counts = d_counts.ptr,
                                                              .pages = d_list_pages.ptr,
                                                              .rows = d_list_rows.ptr,
                                                              .capacity = lay.slots},
                                                    .max_list_pages = lay.slots,
                                                    .scale = scale};
  const double sparse_ms = TimeMs(stream, o.repeats, 1, [&] {
    Check(kernels::LaunchSparseDecodeAttention(sparse, sparse_plan, sparse_ws.ptr, stream),
          "sparse");
  });

  // Selection over every candidate page of every unit (digests: random boxes; the same query each
  // run, so after the first nothing moves: scoring and top-k), and the query-drift check.
  std::vector<float> digests(static_cast<size_t>(batch) * max_pages * o.n_kv_heads * 2 *
                             o.head_dim);
  std::normal_distribution<float> normal;
  for (float& v : digests) v = normal(rng);
  Device<float> d_digests(digests);
  Device<int32_t> slot_page(static_cast<size_t>(units) * lay.slots),
      page_slot(static_cast<size_t>(units) * max_pages), n_pages(units), cursor(units), rc(units),
      rp(static_cast<size_t>(units) * lay.slots), rs(static_cast<size_t>(units) * lay.slots);
  Check(cudaMemset(slot_page.ptr, 0xff, static_cast<size_t>(units) * lay.slots * 4), "memset");
  Check(cudaMemset(page_slot.ptr, 0xff, static_cast<size_t>(units) * max_pages * 4), "memset");
  const kernels::SelectPagesParams select{
      .q = d_q.ptr,
      .q_row_stride = o.n_heads * o.head_dim,
      .num_seqs = batch,
      .n_heads = o.n_heads,
      .digests = {.data = d_digests.ptr,
                  .row_pages = max_pages,
                  .n_kv_heads = o.n_kv_heads,
                  .head_dim = o.head_dim},
      .kv_lens = d_lens.ptr,
      .page_size = o.page_size,
      .layout = lay,
      .residency = {.slot_page = slot_page.ptr,
                    .page_slot = page_slot.ptr,
                    .max_pages = max_pages,
                    .n_pages = n_pages.ptr,
                    .next_window = cursor.ptr},
      .recalls = {.counts = rc.ptr, .pages = rp.ptr, .slots = rs.ptr, .capacity = lay.slots}};
  const double select_ms = TimeMs(
      stream, o.repeats, 1, [&] { Check(kernels::LaunchSelectPages(select, stream), "select"); });
  Device<uint8_t> has_last(std::vector<uint8_t>(batch, 1)), flags(units);
  const kernels::QueryDriftParams drift{.q = d_q.ptr,
                                        .q_row_stride = o.n_heads * o.head_dim,
                                        .last_q = d_last.ptr,
                                        .has_last_q = has_last.ptr,
                                        .num_seqs = batch,
                                        .n_heads = o.n_heads,
                                        .n_kv_heads = o.n_kv_heads,
                                        .head_dim = o.head_dim,
                                        .kv_lens = d_lens.ptr,
                                        .page_size = o.page_size,
                                        .slots = lay.slots,
                                        .tau = 0.9f,
                                        .flags = flags.ptr};
  const double drift_ms = TimeMs(stream, o.repeats, 1,
                                 [&] { Check(kernels::LaunchQueryDrift(drift, stream), "drift"); });
  Emit(common, {{"bench", "tiered_decode"},
                {"batch", batch},
                {"context", o.context},
                {"budget_tokens", lay.slots * o.page_size},
                {"dense_attention_ms", dense_ms},
                {"sparse_attention_ms", sparse_ms},
                {"select_ms", select_ms},
                {"drift_ms", drift_ms},
                {"sparse_over_dense", sparse_ms / dense_ms},
                {"freekv_layer_ms", sparse_ms + select_ms + drift_ms}});
}

int Run(int argc, char** argv) {
  Options o;
  CLI::App app{"FreeKV/Quest device kernels on one layer (JSON lines)"};
  app.add_option("--n-heads", o.n_heads);
  app.add_option("--n-kv-heads", o.n_kv_heads);
  app.add_option("--head-dim", o.head_dim);
  app.add_option("--page-size", o.page_size);
  app.add_option("--context", o.context, "tokens per sequence");
  app.add_option("--budget", o.budget, "device tokens per (sequence, layer)");
  app.add_option("--sink", o.sink);
  app.add_option("--recent", o.recent);
  app.add_option("--batches", o.batches)->delimiter(',');
  app.add_option("--recall-blocks", o.recall_blocks,
                 "grid sizes of the gather (0: one block per chunk)")
      ->delimiter(',');
  app.add_option("--host-gib", o.host_gib, "pinned host tier the gather reads from");
  app.add_option("--repeats", o.repeats);
  CLI11_PARSE(app, argc, argv);
  try {
    cudaDeviceProp prop{};
    Check(cudaGetDeviceProperties(&prop, 0), "device");
    const nlohmann::json common = {{"device", prop.name},        {"n_heads", o.n_heads},
                                   {"n_kv_heads", o.n_kv_heads}, {"head_dim", o.head_dim},
                                   {"page_size", o.page_size},   {"data", "synthetic"}};
    cudaStream_t stream;
    Check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
    for (int batch : o.batches) {
      RecallBench(o, batch, stream, common);
      DecodeBench(o, batch, prop.multiProcessorCount, stream, common);
    }
    cudaStreamDestroy(stream);
  } catch (const Failure& f) {
    std::cerr << "kvserve-tiered-kernel-bench: error: " << f.what << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace kvserve::bench

int main(int argc, char** argv) { return kvserve::bench::Run(argc, argv); }
