// Two kvserve replicas behind the real nginx (deploy/nginx/kvserve.conf) on loopback: calls from
// one client connection spread over both; when one replica drains (SIGTERM), its share moves to
// the other and no call fails. The client retries UNAVAILABLE (a draining replica's refusal,
// sent before any work), as README's Deploy section tells clients to.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/support/command_runner.h"
#include "tests/support/grpc_test_client.h"
#include "tests/support/loopback_http.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/server_process.h"

namespace kvserve::testing {
namespace {

namespace pb = kvserve::v1;
namespace fs = std::filesystem;

constexpr char kNginx[] = "/usr/sbin/nginx";
constexpr char kRetryOnUnavailable[] = R"({"methodConfig": [{
  "name": [{"service": "kvserve.v1.Inference"}],
  "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.05s", "maxBackoff": "0.5s",
                  "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]})";

int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// nginx run from a scratch prefix with the shipped server block, its upstream lines replaced by
// the replicas and its port by a free one. Stopped (and the prefix removed) on destruction.
class NginxProxy {
 public:
  static absl::StatusOr<std::unique_ptr<NginxProxy>> Start(
      const std::vector<std::string>& replicas) {
    std::ifstream shipped(std::string(KVSERVE_SOURCE_DIR) + "/deploy/nginx/kvserve.conf");
    std::stringstream text;
    text << shipped.rdbuf();
    std::string server_block = text.str();
    if (server_block.empty()) return absl::NotFoundError("deploy/nginx/kvserve.conf is missing");
    std::string servers;
    for (const std::string& r : replicas) {
      absl::StrAppend(&servers, "    server ", r, " max_fails=1 fail_timeout=5s;\n");
    }
    server_block =
        std::regex_replace(server_block, std::regex(R"(    server \S+:50051[^\n]*\n)"), servers);
    auto proxy = std::unique_ptr<NginxProxy>(new NginxProxy());
    proxy->port_ = FreeLoopbackPort();
    server_block = std::regex_replace(server_block, std::regex("listen 8080"),
                                      absl::StrCat("listen 127.0.0.1:", proxy->port_));
    char dir_template[] = "/tmp/kvserve-nginx-XXXXXX";
    proxy->prefix_ = mkdtemp(dir_template);
    std::ofstream(proxy->prefix_ / "kvserve.conf") << server_block;
    std::ofstream(proxy->prefix_ / "nginx.conf")
        << "pid " << (proxy->prefix_ / "nginx.pid").string() << ";\n"
        << "error_log " << (proxy->prefix_ / "error.log").string() << " info;\n"
        << "worker_processes 1;\nevents { worker_connections 256; }\n"
        << "http {\n  access_log " << (proxy->prefix_ / "access.log").string()
        << ";\n  client_body_temp_path " << proxy->prefix_.string() << ";\n"
        << "  include " << (proxy->prefix_ / "kvserve.conf").string() << ";\n}\n";
    const CommandResult started = RunCommand(proxy->Nginx(""));
    if (started.exit_code != 0) {
      return absl::InternalError(absl::StrCat("nginx did not start: ", started.err));
    }
    proxy->started_ = true;
    for (int i = 0; i < 500; ++i) {
      const int fd = ConnectLoopback(proxy->port_);
      if (fd >= 0) {
        close(fd);
        return proxy;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return absl::DeadlineExceededError("nginx is not listening");
  }

  ~NginxProxy() {
    if (started_) RunCommand(Nginx("-s stop"));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::error_code ignored;
    fs::remove_all(prefix_, ignored);
  }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  std::string ErrorLog() const {
    std::ifstream in(prefix_ / "error.log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  NginxProxy() = default;
  std::string Nginx(const std::string& extra) const {
    return absl::StrCat(kNginx, " -p ", prefix_.string(), " -c ", (prefix_ / "nginx.conf").string(),
                        " ", extra);
  }

  fs::path prefix_;
  int port_ = 0;
  bool started_ = false;
};

double Served(const ServerProcess& server) {
  return ScrapeMetrics(server.metrics_port()).Sum("kvserve_request_success_total");
}

// Per replica: requests it finished, polled until the count stops moving (a request's metrics land
// just after its last message).
double SettledServed(const ServerProcess& server) {
  double previous = -1, now = Served(server);
  while (now != previous) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    previous = now;
    now = Served(server);
  }
  return now;
}

TEST(NginxBalancingTest, CallsSpreadOverReplicasAndMoveOffADrainingOne) {
  if (!fs::exists(kNginx)) GTEST_SKIP() << "nginx is not installed (scripts/setup.sh installs it)";
  auto a = ServerProcess::Start(ServerProcess::Stories260KArgs());
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = ServerProcess::Start(ServerProcess::Stories260KArgs());
  ASSERT_TRUE(b.ok()) << b.status();
  auto proxy = NginxProxy::Start({(*a)->address(), (*b)->address()});
  ASSERT_TRUE(proxy.ok()) << proxy.status();

  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(kRetryOnUnavailable);
  const auto channel =
      grpc::CreateCustomChannel((*proxy)->address(), grpc::InsecureChannelCredentials(), args);
  auto stub = pb::Inference::NewStub(channel);
  const pb::GenerateRequest request = GreedyTextRequest("Once upon a time", 12);

  // One client connection: nginx round-robins its calls.
  constexpr int kCalls = 20;
  for (int i = 0; i < kCalls; ++i) {
    const StreamResult r = GenerateAll(*stub, request);
    ASSERT_TRUE(r.status.ok()) << Describe(r.status) << "\n" << (*proxy)->ErrorLog();
  }
  const double served_a = SettledServed(**a), served_b = SettledServed(**b);
  EXPECT_EQ(served_a + served_b, kCalls);
  EXPECT_GE(served_a, kCalls / 4) << "replica A got too small a share";
  EXPECT_GE(served_b, kCalls / 4) << "replica B got too small a share";

  // Load from four client threads while A drains and stops.
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0}, reset{0};
  std::mutex errors_mu;
  std::vector<std::string> errors;
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      while (!stop.load()) {
        const StreamResult r = GenerateAll(*stub, request);
        if (r.status.ok()) {
          ++ok;
        } else if (r.status.error_code() == grpc::StatusCode::CANCELLED) {
          ++reset;  // see below
        } else {
          ++failed;
          std::lock_guard lock(errors_mu);
          errors.push_back(Describe(r.status));
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  (*a)->Signal(SIGTERM);
  auto exit_code = (*a)->WaitForExit(std::chrono::seconds(60));
  const int ok_when_a_stopped = ok.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  stop = true;
  for (auto& c : clients) c.join();
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0) << (*a)->Log();
  EXPECT_EQ(failed.load(), 0) << (errors.empty() ? "" : errors.front()) << "\n"
                              << (*proxy)->ErrorLog();
  // Known gap: a call nginx forwards to A in the instant A's gRPC server closes its connection
  // comes back CANCELLED (nginx's mapping of the upstream reset; about 1 run in 8 here). At most
  // that one call; the README's Deploy section says to retry it.
  EXPECT_LE(reset.load(), 1) << (*proxy)->ErrorLog();
  EXPECT_GT(ok.load(), ok_when_a_stopped) << "calls went on after A stopped";

  // A is gone: every further call lands on B.
  const double b_before = SettledServed(**b);
  for (int i = 0; i < 10; ++i) {
    const StreamResult r = GenerateAll(*stub, request);
    ASSERT_TRUE(r.status.ok()) << Describe(r.status) << "\n" << (*proxy)->ErrorLog();
  }
  EXPECT_EQ(SettledServed(**b) - b_before, 10);
}

}  // namespace
}  // namespace kvserve::testing
