// kvserve-gpu-bench: the dense model on the CUDA backend, as JSON lines (one object per
// measurement, each with the device and the model): TTFT of a full prefill at each
// --prefill-lengths (achieved TFLOP/s), decode throughput at --decode-batches ×
// --decode-contexts (tokens/s, GB/s, fraction of the --hbm-gbps roofline), the flash-attention
// prefill kernel alone (TFLOP/s, for the comparison with PyTorch's SDPA in
// tools/bench/torch_reference.py) and, with --gemm-check, the backend's cuBLASLt GEMMs against
// plain cublasGemmEx on the model's shapes. scripts/gpu-bench.sh runs it beside the PyTorch
// reference and summarises the ratios issue 6 sets targets for. --benches picks which run.
//
// --kv-policy full,snapkv,fastkv adds the policy prefill benchmark (policy_prefill.h): TTFT per
// policy at --policy-lengths through the engine API (a request's KvPolicyOptions), beside the
// FLOP model's predicted speedup over full and, with --sdpa-reference (torch_reference.py's JSON
// lines from the same run), the speedup over PyTorch SDPA's full prefill. A policy the backend
// refuses gets a line with "error", not a failed run. scripts/gpu-check.sh runs it.
//
// Order matters for memory: the backend reserves --gpu-memory-fraction of the free device memory
// at load, so the model benchmarks run first and the backend is released before the kernel and
// GEMM benchmarks allocate their own operands.
#include <cuda_runtime_api.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "engine/runtime/cuda/cuda_backend.h"
#include "engine/runtime/cuda/cuda_device.h"
#include "engine/runtime/cuda/cuda_status.h"
#include "engine/runtime/loaded_engine.h"
#include "tools/bench/gpu_attention_bench.h"
#include "tools/bench/gpu_bench_options.h"
#include "tools/bench/gpu_gemm_check.h"
#include "tools/bench/gpu_model_bench.h"
#include "tools/bench/policy_prefill.h"
#include "tools/common/gpu_memory_fraction_option.h"

namespace kvserve::bench {
namespace {

int Fail(const absl::Status& status) {
  std::cerr << "kvserve-gpu-bench: error: " << status.message() << "\n";
  return 1;
}

// A stream for the benchmark's own launches, destroyed on every path out.
class Stream {
 public:
  ~Stream() {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  absl::Status Create() {
    return cuda::CudaStatus(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream");
  }
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

// The SDPA full-prefill TTFT per length from --sdpa-reference, recorded as a "sdpa_reference"
// line. A missing or unreadable file leaves the SDPA ratios null (the line says why): the
// policies are still measured.
std::map<int, double> LoadSdpaReference(const PolicyPrefillOptions& o,
                                        const nlohmann::json& common) {
  if (o.sdpa_reference.empty()) return {};
  nlohmann::json line = {
      {"bench", "sdpa_reference"}, {"path", o.sdpa_reference}, {"sdpa_bench", o.sdpa_bench}};
  std::ifstream in(o.sdpa_reference);
  absl::StatusOr<std::map<int, double>> ttft =
      in ? ReadSdpaTtft(in, o.sdpa_bench)
         : absl::NotFoundError(absl::StrCat("cannot read ", o.sdpa_reference));
  if (!ttft.ok()) {
    line["error"] = std::string(ttft.status().message());
    Emit(common, line);
    return {};
  }
  line["ttft_ms"] = nlohmann::json::object();
  for (const auto& [n, ms] : *ttft) line["ttft_ms"][std::to_string(n)] = ms;
  Emit(common, line);
  return *ttft;
}

void RunPolicyPrefillBench(Backend& backend, const GpuBenchOptions& o,
                           const nlohmann::json& common) {
  const std::map<int, double> sdpa = LoadSdpaReference(o.policy, common);
  const std::vector<PolicyPrefillRun> runs = RunPolicyPrefill(backend, o.policy);
  for (const nlohmann::json& line : PolicyPrefillLines(backend.config(), o.policy, runs, sdpa)) {
    Emit(common, line);
  }
}

// Decode tokens/s per policy and batch (policy_decode.h), freekv_oracle through the backend's
// recall oracle.
void RunPolicyDecodeBench(CudaBackend& backend, const GpuBenchOptions& o,
                          const nlohmann::json& common) {
  // One batch size at a time, its lines out before the next: a check cut short keeps them.
  for (int batch : o.policy_decode.batches) {
    PolicyDecodeOptions one = o.policy_decode;
    one.batches = {batch};
    const std::vector<PolicyDecodeRun> runs =
        RunPolicyDecode(backend, one, [&backend](bool on) { backend.SetRecallOracle(on); });
    for (const nlohmann::json& line : PolicyDecodeLines(one, runs)) Emit(common, line);
  }
}

int Run(const GpuBenchOptions& o) {
  if (cuda::CudaDeviceCount() <= 0) {
    return Fail(absl::FailedPreconditionError("no CUDA device found"));
  }
  int device = 0;
  cudaDeviceProp props{};
  if (auto s = cuda::CudaStatus(cudaGetDevice(&device), "cudaGetDevice"); !s.ok()) return Fail(s);
  if (auto s = cuda::CudaStatus(cudaGetDeviceProperties(&props, device), "device properties");
      !s.ok()) {
    return Fail(s);
  }

  const auto load_start = std::chrono::steady_clock::now();
  auto engine =
      LoadEngine({.model = o.model, .tokenizer = o.tokenizer, .synthetic_seed = o.synthetic_seed},
                 "cuda", /*threads=*/0, o.gpu_memory_fraction, /*kv_dtype=*/"", o.cuda_graphs);
  if (!engine.ok()) return Fail(engine.status());
  const double load_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - load_start)
          .count();
  auto* backend = dynamic_cast<CudaBackend*>(engine->backend.get());
  if (backend == nullptr) return Fail(absl::InternalError("LoadEngine gave no CUDA backend"));
  const ModelConfig config = engine->model.config;
  const nlohmann::json common = {
      {"impl", "kvserve"},
      {"model", config.name},
      {"weights", engine->model.format == "synthetic" ? "synthetic" : "real"},
      {"dtype", "bf16"},
      {"device", props.name},
      {"page_size", o.page_size},
      {"gpu_memory_fraction", o.gpu_memory_fraction},
      {"cuda_graphs", o.cuda_graphs}};
  Emit(common, {{"bench", "load"},
                {"load_ms", load_ms},
                {"kv_capacity_tokens",
                 backend->kv_capacity_pages(o.page_size) * o.page_size / config.n_layers}});

  if (o.runs("policy_prefill")) RunPolicyPrefillBench(*backend, o, common);
  if (o.runs("policy_decode")) RunPolicyDecodeBench(*backend, o, common);
  if (o.runs("prefill")) {
    if (auto s = RunPrefillBench(*backend, o, common); !s.ok()) return Fail(s);
  }
  if (o.runs("decode")) {
    if (auto s = RunDecodeBench(*backend, o, common); !s.ok()) return Fail(s);
  }
  engine->backend.reset();  // gives the pool back to the device

  if (!o.runs("prefill_attention") && !o.gemm_check) return 0;
  Stream stream;
  if (auto s = stream.Create(); !s.ok()) return Fail(s);
  if (o.runs("prefill_attention")) {
    if (auto s = RunPrefillAttentionBench(config, o, stream.get(), common); !s.ok()) {
      return Fail(s);
    }
  }
  if (o.gemm_check) {
    if (auto s = RunGemmCheck(config, o, stream.get(), common); !s.ok()) return Fail(s);
  }
  return 0;
}

}  // namespace
}  // namespace kvserve::bench

int main(int argc, char** argv) {
  kvserve::bench::GpuBenchOptions o;
  CLI::App app{
      "kvserve-gpu-bench: the CUDA backend's prefill, decode, attention and GEMMs as JSON "
      "lines"};
  app.add_option("--model", o.model, "synthetic:NAME, GGUF or llama2.c checkpoint")
      ->capture_default_str();
  app.add_option("--tokenizer", o.tokenizer, "llama2.c tokenizer (unused: prompts are ids)");
  app.add_option("--synthetic-seed", o.synthetic_seed)->capture_default_str();
  kvserve::AddGpuMemoryFractionOption(app, o.gpu_memory_fraction);
  app.add_option("--cuda-graphs", o.cuda_graphs,
                 "decode steps as CUDA graphs (false: every kernel launched)")
      ->capture_default_str();
  app.add_option("--prefill-lengths", o.prefill_lengths, "prompt lengths of the TTFT runs")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--decode-batches", o.decode_batches, "decode batch sizes")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--decode-contexts", o.decode_contexts, "tokens in each decoding sequence's KV")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--decode-steps", o.decode_steps, "timed decode steps per batch x context")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--repeats", o.repeats, "timed runs per prefill length, kernel or GEMM shape")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--page-size", o.page_size, "KV page size in tokens")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--hbm-gbps", o.hbm_gbps,
                 "device memory bandwidth for the decode roofline (H100 SXM: 3350)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("--gemm-check", o.gemm_check,
               "also time the backend's cuBLASLt GEMMs against cublasGemmEx on the model's shapes");
  app.add_option("--benches", o.benches,
                 "benchmarks to run, comma-separated: prefill, decode, prefill_attention, "
                 "policy_prefill (--kv-policy adds it), policy_decode (--decode-policy adds it)")
      ->delimiter(',')
      ->check(CLI::IsMember(
          {"prefill", "decode", "prefill_attention", "policy_prefill", "policy_decode"}))
      ->capture_default_str();
  kvserve::bench::AddPolicyPrefillFlags(app, o.policy);
  kvserve::bench::AddPolicyDecodeFlags(app, o.policy_decode);
  CLI11_PARSE(app, argc, argv);
  for (const absl::Status& s : {kvserve::bench::ValidatePolicyPrefillOptions(o.policy),
                                kvserve::bench::ValidatePolicyDecodeOptions(o.policy_decode)}) {
    if (!s.ok()) {
      std::cerr << "kvserve-gpu-bench: error: " << s.message() << "\n";
      return 2;
    }
  }
  o.policy_decode.page_size = o.page_size;
  if (!o.policy_decode.policies.empty() && !o.runs("policy_decode")) {
    o.benches.push_back("policy_decode");
  }
  if (o.runs("policy_decode") && o.policy_decode.policies.empty()) {
    std::cerr << "kvserve-gpu-bench: error: --benches policy_decode needs --decode-policy\n";
    return 2;
  }
  if (!o.policy.policies.empty() && !o.runs("policy_prefill")) {
    o.benches.push_back("policy_prefill");
  }
  if (o.runs("policy_prefill") && o.policy.policies.empty()) {
    std::cerr << "kvserve-gpu-bench: error: --benches policy_prefill needs --kv-policy\n";
    return 2;
  }
  return kvserve::bench::Run(o);
}
