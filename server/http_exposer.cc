#include "server/http_exposer.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "server/http_request.h"

namespace kvserve::metrics {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kReadTimeout = std::chrono::seconds(5);    // to receive the request head
constexpr auto kWriteTimeout = std::chrono::seconds(10);  // to take the response
constexpr auto kLingerTimeout = std::chrono::milliseconds(200);
constexpr size_t kMaxHeadBytes = 16 * 1024;

std::string Address(const std::string& host, int port) {
  return host.find(':') != std::string::npos ? absl::StrCat("[", host, "]:", port)
                                             : absl::StrCat(host, ":", port);
}

int RemainingMs(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Waits until `fd` is ready for `events`; false on timeout, error, or a wake-up to stop.
bool WaitFor(int fd, short events, int wake_fd, Clock::time_point deadline) {
  for (;;) {
    pollfd fds[2] = {{fd, events, 0}, {wake_fd, POLLIN, 0}};
    const int n = poll(fds, 2, RemainingMs(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || fds[1].revents != 0) return false;
    return (fds[0].revents & (events | POLLHUP | POLLERR)) != 0;
  }
}

std::string Response(int code, const char* reason, const std::string& content_type,
                     const std::string& body, bool head_only, const char* extra_headers = "") {
  std::string out = absl::StrCat("HTTP/1.1 ", code, " ", reason, "\r\nContent-Type: ", content_type,
                                 "\r\nContent-Length: ", body.size(), "\r\n", extra_headers,
                                 "Connection: close\r\n\r\n");
  if (!head_only) out += body;
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpExposer>> HttpExposer::Start(const std::string& host, int port,
                                                                Registry& registry) {
  const std::string address = Address(host, port);
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("metrics port ", port, " is out of range"));
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc =
          getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &found);
      rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address ", address, ": ", gai_strerror(rc)));
  }
  int fd = -1;
  std::string error = "no address";
  for (addrinfo* ai = found; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      error = std::strerror(errno);
      continue;
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0) {
      error = std::strerror(errno);
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("metrics port ", port, ": cannot listen on ", address, ": ", error));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  const int bound_port = bound.ss_family == AF_INET6
                             ? ntohs(reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port)
                             : ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
  int wake[2];
  if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    const std::string why = std::strerror(errno);
    close(fd);
    return absl::InternalError(absl::StrCat("metrics exposer: pipe: ", why));
  }
  return std::unique_ptr<HttpExposer>(new HttpExposer(fd, wake[0], wake[1], bound_port, registry));
}

HttpExposer::HttpExposer(int listen_fd, int wake_read_fd, int wake_write_fd, int port,
                         Registry& registry)
    : listen_fd_(listen_fd),
      wake_read_fd_(wake_read_fd),
      wake_write_fd_(wake_write_fd),
      port_(port),
      registry_(registry) {
  thread_ = std::thread([this] { Serve(); });
}

HttpExposer::~HttpExposer() {
  stopping_.store(true);
  const char byte = 1;
  while (write(wake_write_fd_, &byte, 1) < 0 && errno == EINTR) {
  }
  thread_.join();
  close(listen_fd_);
  close(wake_read_fd_);
  close(wake_write_fd_);
}

void HttpExposer::Serve() {
  while (!stopping_.load()) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_read_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      // Out of descriptors: give the process a moment rather than spin on a readable socket.
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        pollfd wake = {wake_read_fd_, POLLIN, 0};
        poll(&wake, 1, 50);
      }
      continue;
    }
    HandleConnection(fd);
    close(fd);
  }
}

void HttpExposer::HandleConnection(int fd) {
  // Read the request head.
  std::string data;
  size_t head_end = std::string::npos;
  const auto read_deadline = Clock::now() + kReadTimeout;
  char buf[4096];
  while (head_end == std::string::npos && data.size() <= kMaxHeadBytes) {
    if (!WaitFor(fd, POLLIN, wake_read_fd_, read_deadline)) return;
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return;  // closed or broken before a whole request
    data.append(buf, static_cast<size_t>(n));
    head_end = HttpHeadEnd(data);
  }

  std::string response;
  const auto line = head_end == std::string::npos
                        ? std::nullopt
                        : ParseHttpRequestLine(std::string_view(data).substr(0, head_end));
  const bool head_only = line && line->method == "HEAD";
  if (head_end == std::string::npos) {
    response = Response(431, "Request Header Fields Too Large", "text/plain", "request too large\n",
                        false);
  } else if (!line) {
    response = Response(400, "Bad Request", "text/plain", "malformed request\n", false);
  } else if (line->method != "GET" && !head_only) {
    response = Response(405, "Method Not Allowed", "text/plain", "only GET is allowed\n", false,
                        "Allow: GET, HEAD\r\n");
  } else if (line->path != "/metrics") {
    response = Response(404, "Not Found", "text/plain", "not found; try /metrics\n", head_only);
  } else {
    response = Response(200, "OK", "text/plain; version=0.0.4; charset=utf-8",
                        registry_.Serialize(), head_only);
  }

  // Send it, then close gracefully: shut our side and drain what the client still sends, so unread
  // request bytes do not turn the close into a reset that loses the response.
  const auto write_deadline = Clock::now() + kWriteTimeout;
  size_t sent = 0;
  while (sent < response.size()) {
    if (!WaitFor(fd, POLLOUT, wake_read_fd_, write_deadline)) return;
    const ssize_t n = send(fd, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  const auto linger_deadline = Clock::now() + kLingerTimeout;
  while (WaitFor(fd, POLLIN, wake_read_fd_, linger_deadline)) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return;
  }
}

}  // namespace kvserve::metrics
