#include <algorithm>
#include <iostream>

#include "engine/model/stream_detokenizer.h"
#include "nlohmann/json.hpp"
#include "tools/cli/commands.h"
#include "tools/cli/model_options.h"
#include "tools/cli/request_options.h"

namespace kvserve::cli {
namespace {

struct GenerateOptions {
  ModelOptions model;
  RequestOptions request;
  std::string format = "text";
  int prefill_chunk = 2048;
};

int RunGenerate(const GenerateOptions& o) {
  auto engine = LoadEngine(o.model, /*with_backend=*/true);
  if (!engine.ok()) return Fail(engine.status());
  auto request = BuildRequest(o.request, engine->model);
  if (!request.ok()) return Fail(request.status());
  const Tokenizer* tok = engine->model.tokenizer.get();

  BatchGenerator generator(*engine->backend, {.prefill_chunk_tokens = o.prefill_chunk,
                                              .eos_id = tok ? tok->eos_id() : -1});
  const bool text = o.format == "text";
  std::optional<StreamDetokenizer> stream;
  if (tok) stream.emplace(*tok);
  std::string generated;  // special tokens skipped, as streamed
  auto results = generator.Generate(std::span(&*request, 1), [&](size_t, int32_t token) {
    // Without a tokenizer, text mode prints the ids themselves.
    const std::string piece = stream ? stream->Push(token) : std::to_string(token) + " ";
    if (stream) generated += piece;
    if (text) std::cout << piece << std::flush;
  });
  if (!results.ok()) return Fail(results.status());
  const GenerationResult& r = results->front();
  const std::string tail = stream ? stream->Flush() : "";
  generated += tail;
  if (text) {
    std::cout << tail << "\n";
    return 0;
  }
  nlohmann::json kv = {{"policy", r.kv.policy},
                       {"kept_tokens", r.kv.kept_tokens},
                       {"prefill_flops_fraction", r.kv.prefill_flops_fraction}};
  if (r.kv.tsp_tokens > 0) kv["tsp_tokens"] = r.kv.tsp_tokens;  // policies that propagate
  if (IsTieredKvPolicy(r.kv.policy)) {
    const double steps = std::max<int64_t>(1, r.kv.decode_steps);
    kv.update({{"host_tokens", r.kv.host_tokens},
               {"decode_steps", r.kv.decode_steps},
               {"recalled_pages", r.kv.recalled_pages},
               {"recalled_bytes", r.kv.recalled_bytes},
               {"recalled_pages_per_step", r.kv.recalled_pages / steps},
               {"recalled_bytes_per_step", r.kv.recalled_bytes / steps},
               {"corrections", r.kv.corrections},
               {"correction_rate", r.kv.correction_rate},
               {"step_correction_rate", r.kv.step_correction_rate},
               {"resident_fraction", r.kv.resident_fraction}});
  }
  nlohmann::json out = {
      {"model", engine->model.config.name},
      {"backend", o.model.backend},
      {"token_ids", r.tokens},
      {"text", generated},
      {"prompt_tokens", request->prompt.size()},
      {"completion_tokens", r.tokens.size()},
      {"finish_reason", FinishReasonName(r.finish_reason)},
      {"prefill_ms", r.prefill_ms},
      {"ttft_ms", r.ttft_ms},
      {"decode_ms", r.decode_ms},
      {"decode_tokens_per_s", r.decode_tokens_per_s()},
      {"kv", kv},
  };
  std::cout << out.dump() << "\n";
  return 0;
}

}  // namespace

void AddGenerateCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "generate a completion offline");
  AddModelOptions(*cmd, options->model, /*with_backend=*/true);
  AddRequestOptions(*cmd, options->request);
  cmd->add_option("--format", options->format, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->add_option("--prefill-chunk", options->prefill_chunk, "prompt tokens per forward pass")
      ->check(CLI::PositiveNumber);
  cmd->callback([options, &exit_code] { exit_code = RunGenerate(*options); });
}

}  // namespace kvserve::cli
