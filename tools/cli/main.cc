// kvserve-cli: offline generation, tokenization and logits for a model file; a gRPC client.
#include "CLI/CLI.hpp"
#include "spdlog/spdlog.h"
#include "tools/cli/commands.h"
#include "tools/common/grpc_library_hold.h"

int main(int argc, char** argv) {
  const kvserve::GrpcLibraryHold grpc;  // the client commands' channels shut down before exit
  spdlog::set_level(spdlog::level::warn);
  CLI::App app{"kvserve-cli: run a kvserve model offline, or send requests to a server"};
  app.require_subcommand(1);
  int exit_code = 0;
  kvserve::cli::AddGenerateCommand(app, exit_code);
  kvserve::cli::AddTokenizeCommand(app, exit_code);
  kvserve::cli::AddLogitsCommand(app, exit_code);
  kvserve::cli::AddClientCommand(app, exit_code);
  kvserve::cli::AddHealthCommand(app, exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
