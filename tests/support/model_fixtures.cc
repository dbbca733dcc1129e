#include "tests/support/model_fixtures.h"

#include <gtest/gtest.h>

#include "engine/model/model_loader.h"
#include "engine/runtime/cpu/cpu_backend.h"
#include "tests/support/test_paths.h"

namespace kvserve::testing {
namespace {

CpuModel Load(const ModelSource& source) {
  CpuModel m;
  auto loaded = LoadModel(source);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  if (!loaded.ok()) return m;
  m.config = loaded->config;
  m.tokenizer = std::move(loaded->tokenizer);
  m.chat_template = loaded->chat_template;
  auto backend = CpuBackend::Create(m.config, std::move(loaded->weights));
  EXPECT_TRUE(backend.ok()) << backend.status();
  if (backend.ok()) m.backend = std::move(*backend);
  return m;
}

}  // namespace

CpuModel LoadStories260K() {
  return Load({.model = Stories260KModelPath(), .tokenizer = Stories260KTokenizerPath()});
}

CpuModel LoadSmolLm2(const std::string& weights_dtype) {
  const std::string path = SmolLm2GgufPath();
  if (path.empty()) return {};
  return Load({.model = path, .weights_dtype = weights_dtype});
}

std::vector<int32_t> Greedy(CpuModel& model, const std::vector<int32_t>& prompt,
                            int max_new_tokens) {
  BatchGenerator gen(*model.backend, {.eos_id = model.tokenizer ? model.tokenizer->eos_id() : -1});
  GenerationRequest req{.prompt = prompt, .max_new_tokens = max_new_tokens};
  auto results = gen.Generate(std::span(&req, 1));
  EXPECT_TRUE(results.ok()) << results.status();
  return results.ok() ? results->front().tokens : std::vector<int32_t>{};
}

}  // namespace kvserve::testing
