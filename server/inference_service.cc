#include "server/inference_service.h"

#include "absl/strings/str_cat.h"
#include "server/allocation_guard.h"
#include "server/generate_reactor.h"
#include "server/model_info.h"
#include "server/request_limits.h"

namespace kvserve::server {
namespace {

const grpc::Status kLoading(grpc::StatusCode::UNAVAILABLE, "model is loading");
const grpc::Status kDraining(grpc::StatusCode::UNAVAILABLE, "server is draining");

grpc::ServerUnaryReactor* Finished(grpc::CallbackServerContext* context, grpc::Status status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(std::move(status));
  return reactor;
}

}  // namespace

grpc::Status InferenceService::Authenticate(const grpc::CallbackServerContext& context,
                                            int* owner) const {
  *owner = -1;
  if (!api_keys_.has_value()) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "missing 'authorization: Bearer KEY' metadata");
  }
  const auto token = ApiKeys::BearerToken(std::string_view(it->second.data(), it->second.size()));
  const std::optional<int> key = token ? api_keys_->Match(*token) : std::nullopt;
  if (!key.has_value()) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "invalid API key");
  *owner = *key;
  return grpc::Status::OK;
}

grpc::ServerWriteReactor<v1::GenerateResponse>* InferenceService::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  int owner = -1;
  if (grpc::Status auth = Authenticate(*context, &owner); !auth.ok()) {
    metrics_.CountRejected(absl::StatusCode::kUnauthenticated);
    return GenerateReactor::Refuse(std::move(auth));
  }
  ServingEngine* engine = this->engine();
  if (engine == nullptr || draining()) {
    metrics_.CountRejected(absl::StatusCode::kUnavailable);
    return GenerateReactor::Refuse(engine == nullptr ? kLoading : kDraining);
  }
  // An allocation that fails for this request fails this request only.
  return GuardAllocation(
      [&] {
        return GenerateReactor::Start(context, *request, *engine, metrics_, config_.stream_buffer,
                                      owners_, owner);
      },
      [this](grpc::Status status) {
        metrics_.CountRejected(absl::StatusCode::kResourceExhausted);
        return GenerateReactor::Refuse(std::move(status));
      });
}

grpc::ServerUnaryReactor* InferenceService::Abort(grpc::CallbackServerContext* context,
                                                  const v1::AbortRequest* request,
                                                  v1::AbortResponse* response) {
  int owner = -1;
  if (grpc::Status auth = Authenticate(*context, &owner); !auth.ok()) {
    return Finished(context, std::move(auth));
  }
  ServingEngine* engine = this->engine();
  if (engine == nullptr) return Finished(context, kLoading);
  if (request->request_id().empty()) {
    return Finished(context,
                    grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "request_id is empty"));
  }
  // Another client's request answers exactly as an unknown or finished id does (NOT_FOUND): its
  // existence is not revealed, and it keeps running.
  const bool own = owners_.Owns(request->request_id(), owner);
  if (!own || !engine->scheduler->Cancel(request->request_id(), FinishReason::kCancelled)) {
    return Finished(
        context, grpc::Status(grpc::StatusCode::NOT_FOUND,
                              absl::StrCat("no queued or running request '",
                                           LoggedId(request->request_id()), "' of this client")));
  }
  response->set_found(true);
  return Finished(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceService::GetModelInfo(grpc::CallbackServerContext* context,
                                                         const v1::GetModelInfoRequest*,
                                                         v1::ModelInfo* response) {
  int owner = -1;
  if (grpc::Status auth = Authenticate(*context, &owner); !auth.ok()) {
    return Finished(context, std::move(auth));
  }
  ServingEngine* engine = this->engine();
  if (engine == nullptr) return Finished(context, kLoading);
  *response = BuildModelInfo(*engine, config_);
  return Finished(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceService::GetServerStatus(grpc::CallbackServerContext* context,
                                                            const v1::GetServerStatusRequest*,
                                                            v1::ServerStatus* response) {
  int owner = -1;
  if (grpc::Status auth = Authenticate(*context, &owner); !auth.ok()) {
    return Finished(context, std::move(auth));
  }
  // Answers while loading too (ready false, nothing running): it is how a client sees progress.
  response->set_ready(ready());
  response->set_draining(draining());
  v1::KvTierUsage* device = response->add_kv_tiers();
  device->set_tier("device");
  v1::KvTierUsage* host = response->add_kv_tiers();
  host->set_tier("host");  // quest/freekv/fastkv_freekv caches
  ServingEngine* engine = this->engine();
  if (engine == nullptr) {
    device->set_page_size(static_cast<uint32_t>(config_.page_size));
    return Finished(context, grpc::Status::OK);
  }
  const SchedulerStatus s = engine->scheduler->status();
  response->set_running(static_cast<uint32_t>(s.running));
  response->set_waiting(static_cast<uint32_t>(s.waiting));
  response->set_draining(draining() || s.draining);
  response->set_preemptions_total(static_cast<uint64_t>(s.preemptions_total));
  response->set_requests_finished_total(static_cast<uint64_t>(s.finished_total));
  device->set_pages_used(static_cast<uint64_t>(s.pages_used));
  device->set_pages_total(static_cast<uint64_t>(s.pages_total));
  device->set_page_size(static_cast<uint32_t>(s.page_size));
  host->set_pages_used(static_cast<uint64_t>(s.host_pages_used));
  host->set_pages_total(static_cast<uint64_t>(s.host_pages_total));
  host->set_page_size(static_cast<uint32_t>(s.page_size));
  return Finished(context, grpc::Status::OK);
}

}  // namespace kvserve::server
