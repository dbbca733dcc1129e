#pragma once

#include <functional>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace kvserve {

// An invalid request field, carried as data in an InvalidArgument status (as google.rpc.BadRequest
// carries a FieldViolation): the engine names the field by its path in its own request
// ("kv_policy.window"), and each front end renames the path to its own (a proto field, a flag)
// without parsing the message. The message is "<path> <problem>".
struct FieldViolation {
  std::string path;     // "kv_policy.window", "sampling.top_p", "prompt[3]"
  std::string problem;  // "must be >= 1, got 0"
};

inline constexpr absl::string_view kFieldPathPayload = "type.kvserve.dev/field_path";
inline constexpr absl::string_view kFieldProblemPayload = "type.kvserve.dev/field_problem";

// A violation with the status `code`: InvalidArgument for a bad value, FailedPrecondition or
// ResourceExhausted for a valid one that cannot be served here.
inline absl::Status FieldError(absl::StatusCode code, absl::string_view path,
                               absl::string_view problem) {
  absl::Status status(code, absl::StrCat(path, " ", problem));
  status.SetPayload(kFieldPathPayload, absl::Cord(path));
  status.SetPayload(kFieldProblemPayload, absl::Cord(problem));
  return status;
}

inline absl::Status InvalidField(absl::string_view path, absl::string_view problem) {
  return FieldError(absl::StatusCode::kInvalidArgument, path, problem);
}

// The violation `status` carries, if any.
inline std::optional<FieldViolation> FieldViolationOf(const absl::Status& status) {
  auto path = status.GetPayload(kFieldPathPayload);
  auto problem = status.GetPayload(kFieldProblemPayload);
  if (!path || !problem) return std::nullopt;
  return FieldViolation{std::string(*path), std::string(*problem)};
}

// `status` with its field path renamed by `rename` and its message rebuilt (code kept); a status
// without a field path is returned unchanged.
inline absl::Status RenameField(const absl::Status& status,
                                const std::function<std::string(absl::string_view)>& rename) {
  std::optional<FieldViolation> v = FieldViolationOf(status);
  if (!v) return status;
  return FieldError(status.code(), rename(v->path), v->problem);
}

// `status` with `prefix` put before its field path ("window" -> "kv_policy.window").
inline absl::Status PrefixFieldPath(const absl::Status& status, absl::string_view prefix) {
  return RenameField(status,
                     [prefix](absl::string_view path) { return absl::StrCat(prefix, path); });
}

}  // namespace kvserve
