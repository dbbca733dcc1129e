#include "tests/support/loopback_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace kvserve::testing {

int ConnectLoopback(int port, std::chrono::seconds timeout) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  timeval wait{.tv_sec = static_cast<time_t>(timeout.count()), .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wait, sizeof(wait));
  return fd;
}

absl::StatusOr<HttpResponse> SendHttp(int port, const std::string& raw_request,
                                      std::chrono::seconds timeout) {
  const int fd = ConnectLoopback(port, timeout);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("connect to port ", port, " failed"));
  size_t sent = 0;
  while (sent < raw_request.size()) {
    const ssize_t n = send(fd, raw_request.data() + sent, raw_request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      close(fd);
      return absl::UnavailableError(absl::StrCat("send failed: ", std::strerror(errno)));
    }
    sent += static_cast<size_t>(n);
  }
  std::string data;
  char buf[8192];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      return absl::UnavailableError(absl::StrCat("recv failed: ", std::strerror(errno)));
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  close(fd);

  const size_t head_end = data.find("\r\n\r\n");
  if (head_end == std::string::npos) {
    return absl::DataLossError(absl::StrCat("no complete response head: '", data, "'"));
  }
  HttpResponse response;
  const std::string head = data.substr(0, head_end);
  response.body = data.substr(head_end + 4);
  size_t pos = head.find("\r\n");
  const std::string status_line = head.substr(0, pos);
  if (!status_line.starts_with("HTTP/1.1 ") || status_line.size() < 12) {
    return absl::DataLossError(absl::StrCat("bad status line: '", status_line, "'"));
  }
  response.status = std::stoi(status_line.substr(9, 3));
  while (pos != std::string::npos) {
    const size_t start = pos + 2;
    pos = head.find("\r\n", start);
    const std::string line = head.substr(start, pos == std::string::npos ? pos : pos - start);
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const size_t value_start = line.find_first_not_of(' ', colon + 1);
    response.headers[name] = value_start == std::string::npos ? "" : line.substr(value_start);
  }
  return response;
}

absl::StatusOr<HttpResponse> HttpGet(int port, const std::string& path,
                                     std::chrono::seconds timeout) {
  return SendHttp(port,
                  absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: 127.0.0.1:", port,
                               "\r\nConnection: close\r\n\r\n"),
                  timeout);
}

}  // namespace kvserve::testing
