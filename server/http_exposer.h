#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "server/metrics_registry.h"

namespace kvserve::metrics {

// Serves a Registry over HTTP/1.1 for Prometheus: GET (or HEAD) /metrics answers 200 with the text
// format 0.0.4, other paths 404, other methods 405; every response closes the connection. One
// background thread handles one connection at a time; each connection gets a few seconds to send
// its request and take the response, so a slow or broken client delays a scrape but never blocks
// the exposer or brings the process down.
class HttpExposer {
 public:
  // Listens on host:port (port 0: an ephemeral port, see port()). The error names the address when
  // the host does not resolve or the bind fails.
  static absl::StatusOr<std::unique_ptr<HttpExposer>> Start(const std::string& host, int port,
                                                            Registry& registry);
  ~HttpExposer();  // stops and joins the thread
  HttpExposer(const HttpExposer&) = delete;
  HttpExposer& operator=(const HttpExposer&) = delete;

  int port() const { return port_; }

 private:
  HttpExposer(int listen_fd, int wake_read_fd, int wake_write_fd, int port, Registry& registry);
  void Serve();
  void HandleConnection(int fd);

  int listen_fd_;
  int wake_read_fd_;  // a byte written to the wake pipe ends Serve
  int wake_write_fd_;
  int port_;
  Registry& registry_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace kvserve::metrics
