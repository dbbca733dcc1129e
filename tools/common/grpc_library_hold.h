#pragma once

#include "grpc/grpc.h"

namespace kvserve {

// Holds the gRPC library from construction to destruction, then shuts it down and waits. Without
// it, the last channel's release starts gRPC's shutdown on a background thread, and a client
// that exits right after may leave its TLS state half freed (LeakSanitizer reports it). One in
// main, before any channel.
class GrpcLibraryHold {
 public:
  GrpcLibraryHold() { grpc_init(); }
  ~GrpcLibraryHold() { grpc_shutdown_blocking(); }
  GrpcLibraryHold(const GrpcLibraryHold&) = delete;
  GrpcLibraryHold& operator=(const GrpcLibraryHold&) = delete;
};

}  // namespace kvserve
