#include "server/metrics_endpoint.h"

#include <dlfcn.h>
#include <netdb.h>
#include <pthread.h>
#include <sys/socket.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

// Debian's civetweb (prometheus-cpp's HTTP server) starts its threads with 100 KiB stacks, and
// glibc carves each thread's static TLS out of its stack (glibc bug 11787): OpenBLAS alone takes
// 60 KiB, and civetweb's 404 page then overflowed the rest (SIGSEGV on GET /). So every stack size
// set in this process is raised to at least 1 MiB; the executable exports this definition
// (server/CMakeLists.txt), which takes precedence over libc's for civetweb's calls.
extern "C" int pthread_attr_setstacksize(pthread_attr_t* attr, size_t size) {
  using SetStackSize = int (*)(pthread_attr_t*, size_t);
  static const auto libc_setstacksize =
      reinterpret_cast<SetStackSize>(dlsym(RTLD_NEXT, "pthread_attr_setstacksize"));
  constexpr size_t kMinThreadStack = size_t{1} << 20;
  return libc_setstacksize(attr, std::max(size, kMinThreadStack));
}

namespace kvserve::server {
namespace {

// A connection to the endpoint, closed at once (nothing is sent, so no worker waits on it).
void Poke(const std::string& address, int port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(address.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return;
  const int fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    connect(fd, found->ai_addr, found->ai_addrlen);
    close(fd);
  }
  freeaddrinfo(found);
}

// Civetweb takes numeric addresses only ("[v6]:port" for IPv6): resolve a name first.
absl::StatusOr<std::string> ListeningPort(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found); rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve host \"", host, "\": ", gai_strerror(rc)));
  }
  char numeric[NI_MAXHOST] = {};
  const int family = found->ai_family;
  const int rc = getnameinfo(found->ai_addr, found->ai_addrlen, numeric, sizeof(numeric), nullptr,
                             0, NI_NUMERICHOST);
  freeaddrinfo(found);
  if (rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat("host \"", host, "\": ", gai_strerror(rc)));
  }
  return family == AF_INET6 ? absl::StrCat("[", numeric, "]:", port)
                            : absl::StrCat(numeric, ":", port);
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& host, int port,
    const std::vector<std::shared_ptr<prometheus::Collectable>>& collectables) {
  auto address = ListeningPort(host, port);
  if (!address.ok()) return address.status();
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(std::vector<std::string>{
        "listening_ports", *address, "num_threads", std::to_string(kWorkerThreads),
        "request_timeout_ms", std::to_string(kRequestTimeoutMs), "enable_keep_alive", "no"});
  } catch (const std::exception& e) {
    // CivetServer throws when it cannot bind.
    return absl::UnavailableError(absl::StrCat("cannot listen on ", *address, ": ", e.what()));
  }
  const std::vector<int> ports = exposer->GetListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", *address));
  }
  for (const auto& collectable : collectables) exposer->RegisterCollectable(collectable);
  // The address to wake the listener on: the bound one, or loopback for a wildcard.
  std::string wake = address->substr(0, address->rfind(':'));
  if (wake.front() == '[') wake = wake.substr(1, wake.size() - 2);
  if (wake == "0.0.0.0") wake = "127.0.0.1";
  if (wake == "::") wake = "::1";
  return std::unique_ptr<MetricsEndpoint>(
      new MetricsEndpoint(std::move(exposer), ports.front(), std::move(wake)));
}

MetricsEndpoint::~MetricsEndpoint() {
  std::atomic<bool> stopped{false};
  std::thread waker([&] {
    for (int i = 0; i < 100 && !stopped.load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      Poke(wake_address_, port_);
    }
  });
  exposer_.reset();
  stopped = true;
  waker.join();
}

}  // namespace kvserve::server
