// kvserve: the gRPC inference server (DESIGN.md § Contracts). main() orders the lifecycle: signals
// blocked before any thread exists, flags, logging, listen, load, wait for SIGTERM/SIGINT, drain,
// shut down.
#include <csignal>
#include <cstdio>
#include <string>

#include "server/logging.h"
#include "server/server_config.h"
#include "server/server_runner.h"
#include "server/signal_waiter.h"
#include "spdlog/spdlog.h"

namespace {

int Run(int argc, char** argv) {
  using kvserve::server::SignalWaiter;
  // Every thread started from here on inherits the mask: only SignalWaiter's thread sees them.
  SignalWaiter::BlockTerminationSignals();

  kvserve::server::ServerConfig config;
  const kvserve::server::ConfigParse parse =
      kvserve::server::ParseServerConfig(std::span<const char* const>(argv, argc), config);
  if (!parse.run) {
    std::string message = parse.message;
    if (message.empty() || message.back() != '\n') message += '\n';
    std::fputs(message.c_str(), parse.exit_code == 0 ? stdout : stderr);
    return parse.exit_code;
  }
  if (absl::Status s = kvserve::server::ConfigureLogging(config.log_format, config.log_level);
      !s.ok()) {
    std::fprintf(stderr, "kvserve: error: %s\n", std::string(s.message()).c_str());
    return 2;
  }

  SignalWaiter signals;
  const double drain_timeout = config.drain_timeout_s;
  kvserve::server::ServerRunner runner(std::move(config));
  if (absl::Status s = runner.Listen(); !s.ok()) {
    spdlog::error("{}", std::string(s.message()));
    return 1;
  }
  // A signal during loading is acted on once loading ends (it cannot be interrupted midway).
  if (absl::Status s = runner.LoadModel(); !s.ok()) {
    spdlog::error("cannot load the model: {}", std::string(s.message()));
    return 1;
  }

  const int signal = signals.WaitForFirst();
  spdlog::info("received {}: draining", signal == SIGINT ? "SIGINT" : "SIGTERM");
  runner.Drain(std::chrono::duration<double>(drain_timeout),
               [&signals] { return signals.received() >= 2; });
  runner.Shutdown();
  spdlog::info("exiting");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int code = Run(argc, argv);
  kvserve::server::ShutdownLogging();
  return code;
}
