// kvserve-linear-bench: the CPU backend's two ways through a linear layer on stored weights, at
// every batch size, as JSON lines: `int8_dot` (activations quantized to int8 blocks, each weight
// row dotted with every activation row while it sits in L1: the decode path, an int8 GEMM when the
// rows are many) against `fp32_panels` (weight tiles decoded into fp32 panels for OpenBLAS sgemm:
// the prefill path). The engine switches at LinearRunner::kDefaultDotRowsMax rows; this measures
// where the switch belongs. Same process, same weights, paths interleaved, median of the repeats.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/model/weight_matrix.h"
#include "engine/model/weights_dtype.h"
#include "engine/runtime/cpu/linear_weights.h"
#include "nlohmann/json.hpp"
#include "tools/bench/median.h"

namespace kvserve {
namespace {

struct Shape {
  int64_t n = 0, k = 0;  // output rows x input columns of the weight
};

absl::StatusOr<Shape> ParseShape(const std::string& text) {
  const std::vector<std::string> parts = absl::StrSplit(text, 'x');
  Shape s;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &s.n) || !absl::SimpleAtoi(parts[1], &s.k) ||
      s.n <= 0 || s.k <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--shapes: '", text, "' is not NxK with positive N and K (e.g. 3072x576)"));
  }
  return s;
}

// Median wall milliseconds of `repeats` runs of `m` rows through `runner`, after one warm-up run.
double TimeRuns(cpu::LinearRunner& runner, const cpu::LinearWeights& w, const std::vector<float>& x,
                std::vector<float>& y, int m, int repeats) {
  runner.Run(x.data(), w, y.data(), m);
  std::vector<double> ms;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    runner.Run(x.data(), w, y.data(), m);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
  }
  return bench::Median(ms);
}

int Run(int argc, char** argv) {
  CLI::App app{"kvserve-linear-bench: int8 dot kernels vs fp32 panels + sgemm per batch size"};
  std::vector<std::string> types = {"q4_1", "q8_0", "q4_0", "f16"};
  std::vector<std::string> shapes = {"3072x576", "576x1536"};  // SmolLM2-135M's gate/up and down
  std::vector<int> rows = {1, 2, 4, 8, 16, 32, 64, 128, 512};
  int threads = 0;
  int repeats = 5;
  app.add_option(
         "--types", types,
         "weight storage types (" + std::string(kWeightsDtypeChoices) + " but stored and f32)")
      ->delimiter(',');
  app.add_option("--shapes", shapes, "weight shapes NxK (output rows x input columns)")
      ->delimiter(',');
  app.add_option("--rows", rows, "activation rows per call (the batch's tokens)")
      ->delimiter(',')
      ->check(CLI::Range(1, 1 << 16));
  app.add_option("--threads", threads, "thread pool workers (0: one per hardware thread)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--repeats", repeats, "timed runs per measurement (median)")
      ->check(CLI::Range(1, 1000));
  CLI11_PARSE(app, argc, argv);

  std::vector<std::pair<std::string, GgmlType>> parsed_types;
  for (const std::string& name : types) {
    auto type = ParseWeightsDtype(name);
    if (!type.ok() || !type->has_value() || **type == GgmlType::kF32) {
      std::cerr << "kvserve-linear-bench: --types: '" << name
                << "' is not a stored weight type (f16, bf16, q8_0, q4_0, q4_1)\n";
      return 1;
    }
    parsed_types.emplace_back(name, **type);
  }
  std::vector<Shape> parsed_shapes;
  for (const std::string& text : shapes) {
    auto s = ParseShape(text);
    if (!s.ok()) {
      std::cerr << "kvserve-linear-bench: " << s.status().message() << "\n";
      return 1;
    }
    parsed_shapes.push_back(*s);
  }
  if (threads == 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  cpu::ThreadPool pool(threads);
  cpu::LinearRunner dot(pool, /*dot_rows_max=*/1 << 30);
  cpu::LinearRunner panels(pool, /*dot_rows_max=*/0);
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (const Shape& shape : parsed_shapes) {
    std::vector<float> values(static_cast<size_t>(shape.n * shape.k));
    for (float& v : values) v = 0.05f * dist(rng);
    for (const auto& [name, type] : parsed_types) {
      auto matrix = QuantizeMatrix(values, shape.n, shape.k, type, "--shapes");
      if (!matrix.ok()) {
        std::cerr << "kvserve-linear-bench: " << matrix.status().message() << "\n";
        return 1;
      }
      std::vector<cpu::LinearWeights::Source> sources;
      sources.push_back(*std::move(matrix));
      const cpu::LinearWeights w(std::move(sources));
      int dot_faster_up_to = 0;  // the largest row count at which int8_dot won
      for (const int m : rows) {
        std::vector<float> x(static_cast<size_t>(m * shape.k));
        for (float& v : x) v = dist(rng);
        std::vector<float> y(static_cast<size_t>(m * shape.n));
        const double flops = 2.0 * m * shape.n * shape.k;
        double ms[2] = {0, 0};
        const char* names[2] = {"int8_dot", "fp32_panels"};
        cpu::LinearRunner* runners[2] = {&dot, &panels};
        for (int p = 0; p < 2; ++p) {
          ms[p] = TimeRuns(*runners[p], w, x, y, m, repeats);
          std::cout
              << nlohmann::json{{"bench", "linear"},  {"type", name},
                                {"n", shape.n},       {"k", shape.k},
                                {"rows", m},          {"path", names[p]},
                                {"ms", ms[p]},        {"gflops", flops / ms[p] / 1e6},
                                {"threads", threads}, {"isa", kernels::cpu::IsaName(dot.isa())}}
                     .dump()
              << std::endl;
        }
        if (ms[0] < ms[1]) dot_faster_up_to = m;
        std::cout << nlohmann::json{{"bench", "linear_compare"},
                                    {"type", name},
                                    {"n", shape.n},
                                    {"k", shape.k},
                                    {"rows", m},
                                    {"panels_over_dot", ms[1] / ms[0]}}
                         .dump()
                  << std::endl;
      }
      std::cout << nlohmann::json{{"bench", "linear_crossover"},
                                  {"type", name},
                                  {"n", shape.n},
                                  {"k", shape.k},
                                  {"int8_dot_faster_up_to_rows", dot_faster_up_to},
                                  {"engine_dot_rows_max", cpu::LinearRunner::kDefaultDotRowsMax}}
                       .dump()
                << std::endl;
    }
  }
  return 0;
}

}  // namespace
}  // namespace kvserve

int main(int argc, char** argv) { return kvserve::Run(argc, argv); }
