#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace kvserve::testing {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

// Sends `raw_request` as is to 127.0.0.1:port and reads the response until the server closes.
absl::StatusOr<HttpResponse> SendHttp(int port, const std::string& raw_request);
// GET `path` with HTTP/1.1.
absl::StatusOr<HttpResponse> HttpGet(int port, const std::string& path);

// Connects a TCP socket to 127.0.0.1:port; -1 on failure. The caller closes it.
int ConnectLoopback(int port);

}  // namespace kvserve::testing
