#pragma once

#include <new>

#include "grpcpp/grpcpp.h"
#include "spdlog/spdlog.h"

namespace kvserve::server {

inline constexpr const char* kOutOfMemoryMessage = "out of memory while admitting this request";

// Runs `start` (what creates a call's reactor); an allocation that fails inside it becomes
// `refuse(RESOURCE_EXHAUSTED)` for this call only. Without it the exception would reach gRPC,
// which answers UNIMPLEMENTED with an empty message (server_callback_handlers.h).
template <typename Start, typename Refuse>
auto GuardAllocation(Start&& start, Refuse&& refuse) -> decltype(start()) {
  try {
    return start();
  } catch (const std::bad_alloc&) {
    spdlog::warn("{}: refused with RESOURCE_EXHAUSTED", kOutOfMemoryMessage);
    return refuse(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, kOutOfMemoryMessage));
  }
}

}  // namespace kvserve::server
