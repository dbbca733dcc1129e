#include "tools/bench/gpu_model_bench.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/kv/page_pool.h"
#include "engine/kv/sequence_kv_cache.h"
#include "tools/bench/gpu_bench_costs.h"
#include "tools/bench/gpu_timer.h"

namespace kvserve::bench {
namespace {

// Untimed decode steps before the timed ones: the first step of a batch shape plans its GEMMs.
constexpr int kDecodeWarmupSteps = 2;

// One sequence being benchmarked: its KV and the ids/positions Forward's spans point into.
struct BenchSequence {
  std::unique_ptr<SequenceKvCache> kv;
  std::vector<int32_t> tokens, positions;
};

std::vector<int32_t> RandomTokens(std::mt19937& rng, int n, int vocab) {
  std::uniform_int_distribution<int32_t> dist(0, vocab - 1);
  std::vector<int32_t> ids(n);
  for (int32_t& t : ids) t = dist(rng);
  return ids;
}

double MsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

// A host pool as large as the backend's KV arena can grow: the scheduler's sizing for cuda.
std::unique_ptr<PagePool> MakePool(const CudaBackend& backend, int page_size) {
  const ModelConfig& c = backend.config();
  return std::make_unique<PagePool>(KvPageShape{c.n_kv_heads, page_size, c.head_dim},
                                    backend.kv_capacity_pages(page_size));
}

// Prefills `seq` with `n` random tokens in chunks of at most `chunk` rows, no logits.
absl::Status Fill(Backend& backend, BenchSequence& seq, int n, int chunk, std::mt19937& rng) {
  const ModelConfig& c = backend.config();
  std::vector<float> logits;
  for (int begin = 0; begin < n; begin += chunk) {
    const int len = std::min(chunk, n - begin);
    seq.tokens = RandomTokens(rng, len, c.vocab_size);
    seq.positions.resize(len);
    std::iota(seq.positions.begin(), seq.positions.end(), begin);
    const SequenceChunk step{.tokens = seq.tokens,
                             .positions = seq.positions,
                             .kv = seq.kv.get(),
                             .compute_logits = false};
    KVSERVE_RETURN_IF_ERROR(backend.Forward(std::span(&step, 1), &logits));
  }
  return absl::OkStatus();
}

nlohmann::json Skipped(int batch, int context, const std::string& reason) {
  return {{"bench", "decode"},
          {"batch", batch},
          {"context_tokens", context},
          {"skipped", true},
          {"reason", reason}};
}

// One batch × context: fill, warm up, time. An exhausted pool becomes a skip line; any other
// failure ends the benchmark.
absl::Status DecodeOne(CudaBackend& backend, const GpuBenchOptions& o, int batch, int context,
                       int fill_chunk, const nlohmann::json& common, std::mt19937& rng) {
  const ModelConfig& c = backend.config();
  const int steps = std::max(1, o.decode_steps);
  const int final_len = context + kDecodeWarmupSteps + steps;
  if (final_len > c.context_length) {
    Emit(common, Skipped(batch, context,
                         absl::StrCat(final_len, " tokens exceed the model's context of ",
                                      c.context_length)));
    return absl::OkStatus();
  }
  const int64_t pages_per_seq = int64_t{c.n_layers} * ((final_len + o.page_size - 1) / o.page_size);
  const int64_t room = backend.kv_capacity_pages(o.page_size);
  if (pages_per_seq * batch > room) {
    const double gib = 1.0 / (1 << 30);
    const double page_bytes = 2.0 * c.n_kv_heads * o.page_size * c.head_dim * 2;
    Emit(common, Skipped(batch, context,
                         absl::StrCat("KV of ", batch, " x ", final_len, " tokens needs ",
                                      pages_per_seq * batch * page_bytes * gib,
                                      " GiB; the backend's pool has ", room * page_bytes * gib,
                                      " GiB left for KV")));
    return absl::OkStatus();
  }

  std::unique_ptr<PagePool> pool = MakePool(backend, o.page_size);
  std::vector<BenchSequence> seqs(batch);
  for (BenchSequence& seq : seqs) {
    seq.kv = std::make_unique<SequenceKvCache>(*pool, c.n_layers);
    absl::Status s = Fill(backend, seq, context, fill_chunk, rng);
    if (absl::IsResourceExhausted(s)) {
      Emit(common, Skipped(batch, context, std::string(s.message())));
      return absl::OkStatus();
    }
    if (!s.ok()) return s;
  }

  std::vector<SequenceChunk> chunks(batch);
  std::vector<float> logits;
  std::vector<double> step_ms;
  for (int step = 0; step < kDecodeWarmupSteps + steps; ++step) {
    for (int i = 0; i < batch; ++i) {
      BenchSequence& seq = seqs[i];
      seq.tokens = RandomTokens(rng, 1, c.vocab_size);
      seq.positions = {context + step};
      chunks[i] = {.tokens = seq.tokens, .positions = seq.positions, .kv = seq.kv.get()};
    }
    const auto start = std::chrono::steady_clock::now();
    absl::Status s = backend.Forward(chunks, &logits);
    const double ms = MsSince(start);
    if (absl::IsResourceExhausted(s)) {
      Emit(common, Skipped(batch, context, std::string(s.message())));
      return absl::OkStatus();
    }
    if (!s.ok()) return s;
    if (step >= kDecodeWarmupSteps) step_ms.push_back(ms);
  }
  const double ms = Median(step_ms);
  const double bytes = DecodeStepBytes(c, batch, context);
  const double gbps = bytes / (ms * 1e6);
  Emit(common, {{"bench", "decode"},
                {"batch", batch},
                {"context_tokens", context},
                {"steps", steps},
                {"step_ms", ms},
                {"step_ms_min", *std::min_element(step_ms.begin(), step_ms.end())},
                {"tokens_per_s", batch * 1000.0 / ms},
                {"bytes_per_step", bytes},
                {"gbps", gbps},
                {"hbm_gbps", o.hbm_gbps},
                {"hbm_roofline_fraction", gbps / o.hbm_gbps}});
  return absl::OkStatus();
}

}  // namespace

absl::Status RunPrefillBench(CudaBackend& backend, const GpuBenchOptions& o,
                             const nlohmann::json& common) {
  const ModelConfig& c = backend.config();
  std::mt19937 rng(1234);
  std::vector<float> logits;
  for (int n : o.prefill_lengths) {
    if (n <= 0) continue;
    if (n > c.context_length) {
      Emit(common,
           {{"bench", "prefill"},
            {"prompt_tokens", n},
            {"skipped", true},
            {"reason", absl::StrCat("longer than the model's context of ", c.context_length)}});
      continue;
    }
    std::unique_ptr<PagePool> pool = MakePool(backend, o.page_size);
    std::vector<double> samples;
    for (int r = 0; r <= o.repeats; ++r) {  // run 0 is the warm-up
      BenchSequence seq{.kv = std::make_unique<SequenceKvCache>(*pool, c.n_layers),
                        .tokens = RandomTokens(rng, n, c.vocab_size),
                        .positions = std::vector<int32_t>(n)};
      std::iota(seq.positions.begin(), seq.positions.end(), 0);
      const SequenceChunk chunk{
          .tokens = seq.tokens, .positions = seq.positions, .kv = seq.kv.get()};
      const auto start = std::chrono::steady_clock::now();
      if (auto s = backend.Forward(std::span(&chunk, 1), &logits); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("prefill of ", n, " tokens: ", s.message()));
      }
      if (r > 0) samples.push_back(MsSince(start));
    }
    const double ms = Median(samples);
    const double flops = PrefillFlops(c, n);
    Emit(common, {{"bench", "prefill"},
                  {"prompt_tokens", n},
                  {"repeats", o.repeats},
                  {"ttft_ms", ms},
                  {"ttft_ms_min", *std::min_element(samples.begin(), samples.end())},
                  {"flops", flops},
                  {"tflops", flops / (ms * 1e9)}});
  }
  return absl::OkStatus();
}

absl::Status RunDecodeBench(CudaBackend& backend, const GpuBenchOptions& o,
                            const nlohmann::json& common) {
  // Fill in chunks no larger than the longest prefill already run (its step scratch exists), so
  // filling does not take memory the KV needs; 2048 rows is what the backend reserves at load.
  int fill_chunk = 2048;
  for (int n : o.prefill_lengths) fill_chunk = std::max(fill_chunk, n);
  fill_chunk = std::min(fill_chunk, 8192);
  std::mt19937 rng(5678);
  for (int context : o.decode_contexts) {
    for (int batch : o.decode_batches) {
      if (context <= 0 || batch <= 0) continue;
      if (auto s = DecodeOne(backend, o, batch, context, fill_chunk, common, rng); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("decode batch ", batch, " context ", context,
                                                   ": ", s.message()));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace kvserve::bench
