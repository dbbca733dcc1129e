#pragma once

#include "grpcpp/support/server_interceptor.h"

namespace kvserve::server {

// gRPC's callback handlers answer a request that does not parse as the method's message with
// UNIMPLEMENTED and an empty message (server_callback_handlers.h), as if the method did not exist.
// Our handlers never return that, so on kvserve.v1.Inference methods this interceptor rewrites it
// to INVALID_ARGUMENT naming the problem.
class MalformedRequestInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;
};

}  // namespace kvserve::server
