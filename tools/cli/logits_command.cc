#include <iostream>

#include "engine/kv/sequence_kv_cache.h"
#include "nlohmann/json.hpp"
#include "tools/cli/commands.h"
#include "tools/cli/model_options.h"

namespace kvserve::cli {
namespace {

struct LogitsOptions {
  ModelOptions model;
  std::vector<int32_t> prompt_ids;
  std::string format = "json";
};

// Next-token logits after the prompt: what tools/crosscheck_logits.py compares.
int RunLogits(const LogitsOptions& o) {
  auto engine = LoadEngine(o.model, /*with_backend=*/true);
  if (!engine.ok()) return Fail(engine.status());
  const ModelConfig& c = engine->model.config;
  std::vector<int32_t> positions(o.prompt_ids.size());
  for (size_t i = 0; i < positions.size(); ++i) positions[i] = static_cast<int32_t>(i);
  PagePool pool({c.n_kv_heads, 32, c.head_dim}, PagePool::kUnbounded, engine->backend->kv_dtype());
  SequenceKvCache kv(pool, c.n_layers);
  const SequenceChunk chunk{.tokens = o.prompt_ids, .positions = positions, .kv = &kv};
  std::vector<float> logits;
  if (auto s = engine->backend->Forward(std::span(&chunk, 1), &logits); !s.ok()) return Fail(s);
  std::cout << nlohmann::json{{"prompt_tokens", o.prompt_ids.size()}, {"logits", logits}}.dump()
            << "\n";
  return 0;
}

}  // namespace

void AddLogitsCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<LogitsOptions>();
  CLI::App* cmd = app.add_subcommand("logits", "print next-token logits after --prompt-ids (JSON)");
  AddModelOptions(*cmd, options->model, /*with_backend=*/true);
  cmd->add_option("--prompt-ids", options->prompt_ids, "prompt token ids")
      ->delimiter(',')
      ->required();
  cmd->add_option("--format", options->format, "json (the only format: one object per run)")
      ->check(CLI::IsMember({"json"}))
      ->capture_default_str();
  cmd->callback([options, &exit_code] { exit_code = RunLogits(*options); });
}

}  // namespace kvserve::cli
