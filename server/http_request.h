#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kvserve::metrics {

// The request line of an HTTP/1.x request: "METHOD TARGET HTTP/1.x".
struct HttpRequestLine {
  std::string method;
  std::string path;  // the target without its query string
};

// Parses the first line of `head` (the bytes up to the blank line); nullopt when malformed.
std::optional<HttpRequestLine> ParseHttpRequestLine(std::string_view head);

// Where the request head ends (just past "\r\n\r\n" or "\n\n"), or npos while incomplete.
size_t HttpHeadEnd(std::string_view data);

}  // namespace kvserve::metrics
