// kvserve-page-scoring-bench: what the CPU's tiered decode spends choosing pages, one JSON line per
// page size: a decode step's page scoring and top-k (ScorePageCandidates and TopCandidatePages,
// the code TieredKvPolicy::SelectPages runs) over every layer and KV head of one sequence, its
// digests laid out as the policy's tables and larger than the caches, as at pages of 4 tokens.
// Median of the repeats; the selections' checksum shows two builds chose the same pages.
#include <chrono>
#include <cmath>
#include <iostream>
#include <numeric>
#include <random>
#include <vector>

#include "CLI/CLI.hpp"
#include "kernels/ceil_div.h"
#include "kernels/cpu_reference/page_select.h"
#include "nlohmann/json.hpp"
#include "tools/bench/median.h"

namespace kvserve {
namespace {

struct Options {
  int context = 3428;  // the 16 KB of GPL-3 that docs/accuracy.md's CPU timings decode after
  int budget = 1024;
  std::vector<int> page_sizes = {4, 8, 32};
  int layers = 30, kv_heads = 3, group = 3, head_dim = 64;  // SmolLM2-135M
  int steps = 20;
  int repeats = 5;
};

nlohmann::json Run(const Options& o, int page_size) {
  const int n_pages = CeilDiv(o.context, page_size);
  // The policy's split at this budget with a one-page sink and a 256-token window.
  const int slots = o.budget / page_size;
  const int sink = 1, window = CeilDiv(256, page_size);
  const int retrieved = slots - sink - window;
  const int candidates = n_pages - sink - window;
  const size_t box = static_cast<size_t>(2) * o.head_dim;  // hi then lo
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> digests(static_cast<size_t>(o.layers) * o.kv_heads * candidates * box);
  for (float& v : digests) v = normal(rng);
  std::vector<float> queries(static_cast<size_t>(o.steps) * o.layers * o.kv_heads * o.group *
                             o.head_dim);
  for (float& v : queries) v = normal(rng);
  std::vector<int32_t> pages(candidates);
  std::iota(pages.begin(), pages.end(), sink);
  std::vector<const float*> hi(candidates), lo(candidates);
  std::vector<float> scores(candidates);
  uint64_t checksum = 0;
  auto step = [&](int s) {
    for (int l = 0; l < o.layers; ++l) {
      for (int h = 0; h < o.kv_heads; ++h) {
        const size_t unit = static_cast<size_t>(l) * o.kv_heads + h;
        for (int i = 0; i < candidates; ++i) {
          hi[i] = digests.data() + (unit * candidates + i) * box;
          lo[i] = hi[i] + o.head_dim;
        }
        const float* q =
            queries.data() +
            ((static_cast<size_t>(s) * o.layers * o.kv_heads) + unit) * o.group * o.head_dim;
        kernels::reference::ScorePageCandidates(
            q, o.group, o.head_dim, hi, lo, kernels::PageScoreAggregation::kMeanSoftmax, scores);
        for (const int32_t p : kernels::reference::TopCandidatePages(scores, pages, retrieved)) {
          checksum = checksum * 1000003 + static_cast<uint64_t>(p);
        }
      }
    }
  };
  std::vector<double> ms;
  for (int r = 0; r < o.repeats; ++r) {
    checksum = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int s = 0; s < o.steps; ++s) step(s);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count() /
                 o.steps);
  }
  return {{"bench", "page_scoring"},
          {"page_size", page_size},
          {"context", o.context},
          {"candidates", candidates},
          {"retrieved", retrieved},
          {"layers", o.layers},
          {"kv_heads", o.kv_heads},
          {"group", o.group},
          {"head_dim", o.head_dim},
          {"digest_mib", digests.size() * sizeof(float) / 1048576.0},
          {"ms_per_step", bench::Median(ms)},
          {"selection_checksum", checksum}};
}

}  // namespace
}  // namespace kvserve

int main(int argc, char** argv) {
  kvserve::Options o;
  CLI::App app{"kvserve-page-scoring-bench: the CPU's page scoring and top-k per decode step"};
  app.add_option("--context", o.context, "sequence length in tokens")
      ->check(CLI::Range(64, 1 << 20))
      ->capture_default_str();
  app.add_option("--budget", o.budget, "device budget in tokens (sink, window, retrieved pages)")
      ->check(CLI::Range(64, 1 << 20))
      ->capture_default_str();
  app.add_option("--page-sizes", o.page_sizes, "page sizes in tokens")
      ->delimiter(',')
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--steps", o.steps, "decode steps per repeat")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--repeats", o.repeats, "repeats (median)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  for (const int p : o.page_sizes) {
    const int n_pages = kvserve::CeilDiv(o.context, p);
    const int window = kvserve::CeilDiv(256, p);
    if (o.budget / p <= 1 + window || n_pages <= o.budget / p) {
      std::cerr << "kvserve-page-scoring-bench: page size " << p << " leaves no page to choose at"
                << " --context " << o.context << " --budget " << o.budget << "\n";
      return 1;
    }
  }
  for (const int p : o.page_sizes) std::cout << kvserve::Run(o, p).dump() << std::endl;
  return 0;
}
