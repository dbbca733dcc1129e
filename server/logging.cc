#include "server/logging.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>

#include "absl/strings/str_cat.h"
#include "google/protobuf/stubs/logging.h"
#include "grpc/support/log.h"
#include "nlohmann/json.hpp"
#include "spdlog/async.h"
#include "spdlog/formatter.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace kvserve::server {
namespace {

constexpr size_t kQueueSize = 8192;

// Set once ShutdownLogging has dropped the logger: gRPC may still log from its own threads then.
std::atomic<bool> g_logger_down{false};

// {"ts":"2025-01-31T12:00:00.123Z","level":"info","logger":"kvserve","msg":"..."}: the message is
// escaped by nlohmann::json (invalid UTF-8 replaced, never thrown).
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto since_epoch = msg.time.time_since_epoch();
    const std::time_t seconds =
        std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
    const auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count() % 1000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char stamp[32];
    const size_t n = std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &utc);
    char ts[48];
    std::snprintf(ts, sizeof(ts), "%.*s.%03dZ", static_cast<int>(n), stamp,
                  static_cast<int>(millis));
    const auto level = spdlog::level::to_string_view(msg.level);
    nlohmann::ordered_json line = {
        {"ts", ts},
        {"level", std::string(level.data(), level.size())},
        {"logger", std::string(msg.logger_name.data(), msg.logger_name.size())},
        {"msg", std::string(msg.payload.data(), msg.payload.size())},
    };
    const std::string text =
        line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    dest.append(text.data(), text.data() + text.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

void GrpcLog(gpr_log_func_args* args) {
  if (g_logger_down.load()) {
    std::fprintf(stderr, "grpc: %s (%s:%d)\n", args->message, args->file, args->line);
    return;
  }
  const spdlog::level::level_enum level =
      args->severity == GPR_LOG_SEVERITY_ERROR  ? spdlog::level::err
      : args->severity == GPR_LOG_SEVERITY_INFO ? spdlog::level::info
                                                : spdlog::level::debug;
  spdlog::log(level, "grpc: {} ({}:{})", args->message, args->file, args->line);
}

void ProtobufLog(google::protobuf::LogLevel level, const char* file, int line,
                 const std::string& message) {
  if (g_logger_down.load()) {
    std::fprintf(stderr, "protobuf: %s (%s:%d)\n", message.c_str(), file, line);
    return;
  }
  const spdlog::level::level_enum spd =
      level >= google::protobuf::LOGLEVEL_ERROR     ? spdlog::level::err
      : level == google::protobuf::LOGLEVEL_WARNING ? spdlog::level::warn
                                                    : spdlog::level::info;
  spdlog::log(spd, "protobuf: {} ({}:{})", message, file, line);
}

}  // namespace

absl::Status ConfigureLogging(const std::string& format, const std::string& level) {
  const spdlog::level::level_enum parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(absl::StrCat("--log-level: unknown level '", level, "'"));
  }
  if (format != "text" && format != "json") {
    return absl::InvalidArgumentError(
        absl::StrCat("--log-format must be text or json, got '", format, "'"));
  }
  spdlog::init_thread_pool(kQueueSize, 1);
  auto sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  auto logger = std::make_shared<spdlog::async_logger>(
      "kvserve", sink, spdlog::thread_pool(), spdlog::async_overflow_policy::overrun_oldest);
  if (format == "json") {
    logger->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
  logger->set_level(parsed);
  // Flush every line: the output is often a pipe (a container log, a test reading the port).
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
  gpr_set_log_function(GrpcLog);
  google::protobuf::SetLogHandler(ProtobufLog);
  return absl::OkStatus();
}

void ShutdownLogging() {
  g_logger_down.store(true);
  spdlog::shutdown();
}

}  // namespace kvserve::server
