#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Status propagation, the idiom every Abseil user defines for itself (Abseil declines to ship it):
//   KVSERVE_RETURN_IF_ERROR(DoThing());
//   KVSERVE_ASSIGN_OR_RETURN(auto value, MakeThing());
#define KVSERVE_RETURN_IF_ERROR(expr)                                     \
  do {                                                                    \
    if (::absl::Status kvserve_status_ = (expr); !kvserve_status_.ok()) { \
      return kvserve_status_;                                             \
    }                                                                     \
  } while (false)

#define KVSERVE_STATUS_CONCAT_INNER(a, b) a##b
#define KVSERVE_STATUS_CONCAT(a, b) KVSERVE_STATUS_CONCAT_INNER(a, b)

#define KVSERVE_ASSIGN_OR_RETURN(lhs, expr) \
  KVSERVE_ASSIGN_OR_RETURN_IMPL(KVSERVE_STATUS_CONCAT(kvserve_statusor_, __LINE__), lhs, expr)

#define KVSERVE_ASSIGN_OR_RETURN_IMPL(statusor, lhs, expr) \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = *std::move(statusor)
