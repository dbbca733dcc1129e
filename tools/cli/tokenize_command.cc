#include <iostream>

#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "tools/cli/commands.h"
#include "tools/cli/model_options.h"

namespace kvserve::cli {
namespace {

struct TokenizeOptions {
  ModelOptions model;
  std::string text;
  std::string format = "json";
};

int RunTokenize(const TokenizeOptions& o) {
  auto engine = LoadEngine(o.model, /*with_backend=*/false);
  if (!engine.ok()) return Fail(engine.status());
  const Tokenizer* tok = engine->model.tokenizer.get();
  if (tok == nullptr) return Fail(absl::InvalidArgumentError("this model has no tokenizer"));
  const std::vector<int32_t> ids = tok->Encode(o.text);
  if (o.format == "json") {
    std::cout << nlohmann::json{{"ids", ids}}.dump() << "\n";
  } else {
    std::cout << absl::StrJoin(ids, " ") << "\n";
  }
  return 0;
}

}  // namespace

void AddTokenizeCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand("tokenize", "print the token ids of a text (no BOS added)");
  AddModelOptions(*cmd, options->model, /*with_backend=*/false);
  cmd->add_option("--text", options->text, "text to tokenize")->required();
  cmd->add_option("--format", options->format, "json or text")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->callback([options, &exit_code] { exit_code = RunTokenize(*options); });
}

}  // namespace kvserve::cli
