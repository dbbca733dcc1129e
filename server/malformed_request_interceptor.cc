#include "server/malformed_request_interceptor.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "kvserve/v1/inference.grpc.pb.h"

namespace kvserve::server {
namespace {

class MalformedRequestInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit MalformedRequestInterceptor(std::string method) : method_(std::move(method)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using Hook = grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(Hook::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED &&
          status.error_message().empty()) {
        methods->ModifySendStatus(
            grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                         absl::StrCat("the request to ", method_,
                                      " could not be parsed as its protobuf message (malformed or "
                                      "truncated bytes)")));
      }
    }
    methods->Proceed();
  }

 private:
  std::string method_;
};

}  // namespace

grpc::experimental::Interceptor* MalformedRequestInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  static const std::string kPrefix = absl::StrCat("/", v1::Inference::service_full_name(), "/");
  if (info->method() == nullptr || !absl::StartsWith(info->method(), kPrefix)) return nullptr;
  return new MalformedRequestInterceptor(info->method());
}

}  // namespace kvserve::server
