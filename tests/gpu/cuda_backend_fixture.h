#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/model/model_loader.h"
#include "engine/model/prompt_encoding.h"
#include "engine/runtime/cpu/cpu_backend.h"
#include "engine/runtime/cuda/cuda_backend.h"
#include "tests/gpu/gpu_test_support.h"
#include "tests/support/test_paths.h"

namespace kvserve::testing {

// The CUDA backend's share of device memory in tests: enough for SmolLM2, and leaves room for
// other gpu tests running beside this one.
inline constexpr double kTestGpuMemoryFraction = 0.25;

// SmolLM2-135M-Instruct on both backends from one load (the CPU backend gets a copy of the fp32
// weights). `cuda` is null when the GGUF is absent; failures are reported to the calling test.
struct SmolLm2OnBothBackends {
  ModelConfig config;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Backend> cpu;
  std::unique_ptr<Backend> cuda;
};

inline SmolLm2OnBothBackends LoadSmolLm2OnBothBackends() {
  SmolLm2OnBothBackends m;
  const std::string path = SmolLm2GgufPath();
  if (path.empty()) return m;
  // fp32 weights: the CPU backend's fp32 path is the reference the CUDA backend is held to.
  auto loaded = LoadModel({.model = path, .weights_dtype = "f32"});
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  if (!loaded.ok()) return m;
  m.config = loaded->config;
  m.tokenizer = std::move(loaded->tokenizer);
  auto cpu = CpuBackend::Create(m.config, loaded->weights);
  EXPECT_TRUE(cpu.ok()) << cpu.status();
  if (!cpu.ok()) return m;
  m.cpu = *std::move(cpu);
  auto cuda = CudaBackend::Create(m.config, std::move(loaded->weights),
                                  {.gpu_memory_fraction = kTestGpuMemoryFraction});
  EXPECT_TRUE(cuda.ok()) << cuda.status();
  if (cuda.ok()) m.cuda = *std::move(cuda);
  return m;
}

// Plain English prose (written for these tests), BOS first, repeated until `n` tokens: natural
// text keeps the model's predictions confident, so top-1 agreement measures the backends and not
// coin flips between near-tied tokens.
inline std::vector<int32_t> EnglishPrompt(const Tokenizer& tokenizer, size_t n) {
  static constexpr const char* kParagraphs[] = {
      "The lighthouse keeper climbed the narrow stairs every evening at dusk. He carried a small "
      "can of oil, a cloth, and a notebook in which he wrote the weather, the ships he saw, and "
      "anything else that seemed worth remembering. ",
      "In the spring the village held a market by the harbour. Farmers brought eggs, cheese and "
      "early vegetables, and the fishermen sold their catch straight from the boats while "
      "children ran between the stalls. ",
      "A good recipe for bread needs only flour, water, salt and yeast, but it also needs "
      "patience. The dough must rest until it has doubled in size, and then it is shaped, left "
      "to rise again, and baked in a hot oven. ",
      "The river begins as a stream high in the mountains, fed by melting snow. It grows as it "
      "flows down the valley, joined by smaller streams, until it is wide enough for barges to "
      "carry timber and grain to the coast. ",
      "When the library opened its new reading room, people came from all over the town. There "
      "were tall windows, long oak tables, and shelves of books about history, science, travel "
      "and the sea. ",
  };
  std::vector<int32_t> tokens;
  for (size_t i = 0; tokens.size() < n; ++i) {
    const std::string text = kParagraphs[i % std::size(kParagraphs)];
    const std::vector<int32_t> ids =
        i == 0 ? EncodePromptText(tokenizer, text) : tokenizer.Encode(text);
    tokens.insert(tokens.end(), ids.begin(), ids.end());
  }
  tokens.resize(n);
  return tokens;
}

inline std::vector<int32_t> Positions(int first, int n) {
  std::vector<int32_t> p(n);
  for (int i = 0; i < n; ++i) p[i] = first + i;
  return p;
}

inline int ArgMax(std::span<const float> row) {
  return static_cast<int>(std::max_element(row.begin(), row.end()) - row.begin());
}

inline float MaxAbsDifference(std::span<const float> a, std::span<const float> b) {
  float most = 0.0f;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    most = std::max(most, std::abs(a[i] - b[i]));
  return most;
}

}  // namespace kvserve::testing
