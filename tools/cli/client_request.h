#pragma once

#include "absl/status/statusor.h"
#include "kvserve/v1/inference.pb.h"
#include "tools/cli/request_options.h"

namespace kvserve::cli {

// The gRPC request for the `generate` flags: --prompt as text (the server tokenizes and adds BOS),
// --prompt-ids as token ids, --chat as chat messages (--system first); every sampling flag is sent
// explicitly so the server generates what `generate` would. Of the KV policy only the --kv-* flags
// given are sent (ToProtoKvPolicy); the rest take the server's defaults. Errors name the flag.
absl::StatusOr<kvserve::v1::GenerateRequest> BuildGenerateRequest(const RequestOptions& options);

}  // namespace kvserve::cli
