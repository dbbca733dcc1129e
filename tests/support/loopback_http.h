#pragma once

#include <chrono>
#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace kvserve::testing {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

constexpr std::chrono::seconds kHttpTimeout{20};

// Sends `raw_request` as is to 127.0.0.1:port and reads the response until the server closes;
// a send or receive that waits longer than `timeout` fails.
absl::StatusOr<HttpResponse> SendHttp(int port, const std::string& raw_request,
                                      std::chrono::seconds timeout = kHttpTimeout);
// GET `path` with HTTP/1.1.
absl::StatusOr<HttpResponse> HttpGet(int port, const std::string& path,
                                     std::chrono::seconds timeout = kHttpTimeout);

// Connects a TCP socket to 127.0.0.1:port; -1 on failure. The caller closes it.
int ConnectLoopback(int port, std::chrono::seconds timeout = kHttpTimeout);

}  // namespace kvserve::testing
