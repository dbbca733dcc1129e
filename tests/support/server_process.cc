#include "tests/support/server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/support/health_check.h"
#include "tests/support/test_paths.h"

namespace kvserve::testing {
namespace {

constexpr auto kPoll = std::chrono::milliseconds(20);
constexpr auto kStartTimeout = std::chrono::seconds(120);  // loading a model included
constexpr auto kStopTimeout = std::chrono::seconds(60);

// The port at the end of the first log line containing `marker` ("... on 127.0.0.1:4321").
std::optional<int> PortAfter(const std::string& log, const std::string& marker) {
  const size_t at = log.find(marker);
  if (at == std::string::npos) return std::nullopt;
  const size_t eol = log.find('\n', at);
  if (eol == std::string::npos) return std::nullopt;  // the line is still being written
  const std::string line = log.substr(at, eol - at);
  const size_t colon = line.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  try {
    return std::stoi(line.substr(colon + 1));
  } catch (...) {
    return std::nullopt;
  }
}

int ExitCode(int wait_status) {
  return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
}

}  // namespace

std::vector<std::string> ServerProcess::Stories260KArgs() {
  return {"--model", Stories260KModelPath(), "--tokenizer", Stories260KTokenizerPath()};
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const std::vector<std::string>& args, std::shared_ptr<grpc::ChannelCredentials> credentials) {
  const std::string binary = std::string(KVSERVE_BIN_DIR) + "/kvserve";
  const std::string dir = MakeTempDir();
  if (dir.empty()) return absl::InternalError("cannot make a temporary directory");
  const std::string log_path = dir + "/kvserve.log";

  std::vector<std::string> argv_strings = {binary, "--host",         "127.0.0.1", "--port",
                                           "0",    "--metrics-port", "0"};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  // fork + exec rather than posix_spawn, to set a parent-death signal: a test process that dies
  // (a crash, an abort) takes its server with it instead of leaving it running. Between fork and
  // exec only async-signal-safe calls.
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    const int in = open("/dev/null", O_RDONLY);
    const int out = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0) _exit(127);
    dup2(in, 0);
    dup2(out, 1);
    dup2(out, 2);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  std::unique_ptr<ServerProcess> server(new ServerProcess(pid, log_path));
  server->credentials_ = std::move(credentials);
  const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  if (absl::Status s = server->AwaitPorts(kStartTimeout); !s.ok()) return s;
  const auto left =
      std::chrono::duration_cast<std::chrono::seconds>(deadline - std::chrono::steady_clock::now());
  if (absl::Status s = server->AwaitServing(std::max(left, std::chrono::seconds(1))); !s.ok()) {
    return s;
  }
  return server;
}

absl::Status ServerProcess::AwaitPorts(std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string log = Log();
    const auto grpc_port = PortAfter(log, "gRPC listening on ");
    const auto metrics_port = PortAfter(log, "metrics listening on ");
    if (grpc_port && metrics_port) {
      grpc_port_ = *grpc_port;
      metrics_port_ = *metrics_port;
      return absl::OkStatus();
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(
          absl::StrCat("kvserve exited (", ExitCode(status), ") before listening:\n", log));
    }
    std::this_thread::sleep_for(kPoll);
  }
  return absl::DeadlineExceededError(absl::StrCat("kvserve logged no listening ports:\n", Log()));
}

absl::Status ServerProcess::AwaitServing(std::chrono::seconds timeout) {
  const auto channel = NewChannel();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  absl::Status last = absl::DeadlineExceededError("no health answer");
  while (std::chrono::steady_clock::now() < deadline) {
    auto health = CheckHealth(channel, "kvserve.v1.Inference", std::chrono::milliseconds(1000));
    if (health.ok() && *health == HealthStatus::kServing) return absl::OkStatus();
    if (!health.ok()) last = health.status();
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(
          absl::StrCat("kvserve exited (", ExitCode(status), ") before serving:\n", Log()));
    }
    std::this_thread::sleep_for(kPoll);
  }
  return absl::DeadlineExceededError(
      absl::StrCat("kvserve.v1.Inference never SERVING (", last.message(), "):\n", Log()));
}

ServerProcess::~ServerProcess() {
  if (pid_ <= 0) return;
  Signal(SIGTERM);
  if (!WaitForExit(std::chrono::duration_cast<std::chrono::seconds>(kStopTimeout)).ok()) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::string ServerProcess::address() const { return absl::StrCat("127.0.0.1:", grpc_port_); }

std::shared_ptr<grpc::Channel> ServerProcess::NewChannel() const {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(
      address(), credentials_ != nullptr ? credentials_ : grpc::InsecureChannelCredentials(), args);
}

std::unique_ptr<kvserve::v1::Inference::Stub> ServerProcess::NewStub() const {
  return kvserve::v1::Inference::NewStub(NewChannel());
}

void ServerProcess::Signal(int signal) const {
  if (pid_ > 0) kill(pid_, signal);
}

absl::StatusOr<int> ServerProcess::WaitForExit(std::chrono::seconds timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("kvserve is not running");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      pid_ = -1;
      return ExitCode(status);
    }
    if (done < 0) {
      pid_ = -1;
      return absl::InternalError("waitpid failed");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::DeadlineExceededError("kvserve still running");
    }
    std::this_thread::sleep_for(kPoll);
  }
}

std::string ServerProcess::Log() const {
  std::ifstream in(log_path_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace kvserve::testing
