#pragma once

#include <string>

#include "absl/status/status.h"

namespace kvserve::server {

// Makes spdlog's default logger the server's: asynchronous, so a request's log line written from
// the engine thread never waits on the terminal or a full pipe (lines are dropped, oldest first,
// if 8192 pile up); to stdout; `format` "text" or "json" (one JSON object per line: ts, level,
// logger, msg); at `level` (spdlog's names). gRPC's and protobuf's own log lines are routed
// through it too, so JSON output holds nothing else.
absl::Status ConfigureLogging(const std::string& format, const std::string& level);

// Flushes and stops the logger's thread; call last, before the process exits.
void ShutdownLogging();

}  // namespace kvserve::server
