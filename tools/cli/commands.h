#pragma once

#include "CLI/CLI.hpp"

namespace kvserve::cli {

// Each registers its subcommand; the callback stores the exit code in `exit_code`.
void AddGenerateCommand(CLI::App& app, int& exit_code);
void AddTokenizeCommand(CLI::App& app, int& exit_code);
void AddLogitsCommand(CLI::App& app, int& exit_code);
void AddClientCommand(CLI::App& app, int& exit_code);
void AddHealthCommand(CLI::App& app, int& exit_code);

}  // namespace kvserve::cli
