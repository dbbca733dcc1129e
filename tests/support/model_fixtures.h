#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/model/loaded_model.h"
#include "engine/runtime/backend.h"
#include "engine/scheduler/batch_generator.h"

namespace kvserve::testing {

// A model loaded with its CPU backend (weights moved into the backend).
struct CpuModel {
  ModelConfig config;
  std::unique_ptr<Tokenizer> tokenizer;
  std::string chat_template;
  std::unique_ptr<Backend> backend;
};

// stories260K with its tokenizer; fails the calling test on error.
CpuModel LoadStories260K();
// SmolLM2-135M-Instruct from its GGUF; `backend` null when the file is absent (test skips).
// `weights_dtype` as --weights-dtype: "stored" keeps the file's Q4_1/Q8_0 matrices, "f32" is the
// fp32 reference path.
CpuModel LoadSmolLm2(const std::string& weights_dtype = "stored");

// Greedy generation of `max_new_tokens` from `prompt`, EOS honoured.
std::vector<int32_t> Greedy(CpuModel& model, const std::vector<int32_t>& prompt,
                            int max_new_tokens);

}  // namespace kvserve::testing
