// kvserve-gpu-bench: the dense model on the CUDA backend, as JSON lines (one object per
// measurement, each with the device and the model): TTFT of a full prefill at each
// --prefill-lengths (achieved TFLOP/s), decode throughput at --decode-batches ×
// --decode-contexts (tokens/s, GB/s, fraction of the --hbm-gbps roofline), the flash-attention
// prefill kernel alone (TFLOP/s, for the comparison with PyTorch's SDPA in
// tools/bench/torch_reference.py) and, with --gemm-check, the backend's cuBLASLt GEMMs against
// plain cublasGemmEx on the model's shapes. scripts/gpu-bench.sh runs it beside the PyTorch
// reference and summarises the ratios issue 6 sets targets for.
//
// Order matters for memory: the backend reserves --gpu-memory-fraction of the free device memory
// at load, so the model benchmarks run first and the backend is released before the kernel and
// GEMM benchmarks allocate their own operands.
#include <cuda_runtime_api.h>

#include <chrono>
#include <iostream>

#include "CLI/CLI.hpp"
#include "engine/runtime/cuda/cuda_backend.h"
#include "engine/runtime/cuda/cuda_device.h"
#include "engine/runtime/cuda/cuda_status.h"
#include "engine/runtime/loaded_engine.h"
#include "tools/bench/gpu_attention_bench.h"
#include "tools/bench/gpu_bench_options.h"
#include "tools/bench/gpu_gemm_check.h"
#include "tools/bench/gpu_model_bench.h"
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
                 "cuda", /*threads=*/0, o.gpu_memory_fraction);
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
      {"gpu_memory_fraction", o.gpu_memory_fraction}};
  Emit(common, {{"bench", "load"},
                {"load_ms", load_ms},
                {"kv_capacity_tokens",
                 backend->kv_capacity_pages(o.page_size) * o.page_size / config.n_layers}});

  if (auto s = RunPrefillBench(*backend, o, common); !s.ok()) return Fail(s);
  if (auto s = RunDecodeBench(*backend, o, common); !s.ok()) return Fail(s);
  engine->backend.reset();  // gives the pool back to the device

  Stream stream;
  if (auto s = stream.Create(); !s.ok()) return Fail(s);
  if (auto s = RunPrefillAttentionBench(config, o, stream.get(), common); !s.ok()) return Fail(s);
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
  CLI11_PARSE(app, argc, argv);
  return kvserve::bench::Run(o);
}
