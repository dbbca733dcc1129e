#include "server/generate_reactor.h"

#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/api_keys.h"
#include "server/grpc_status.h"
#include "server/request_limits.h"
#include "server/request_observer.h"
#include "server/request_validation.h"
#include "server/response_conversion.h"
#include "spdlog/spdlog.h"

namespace kvserve::server {
namespace {

// The call's deadline on the engine's clock; none when the client set none.
std::optional<EngineClock::time_point> EngineDeadline(const grpc::CallbackServerContext& context) {
  const auto deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return std::nullopt;
  const auto left = deadline - std::chrono::system_clock::now();
  return EngineClock::now() +
         std::chrono::duration_cast<EngineClock::duration>(std::max(left, decltype(left)::zero()));
}

// A client's own deadline cancels the call (RST_STREAM) about when the server's copy of it, which
// started one hop later, is due; that hop includes the server's own queueing, which grows with
// load. So a cancellation in the last fifth of the call's time (at least its last 50 ms) is the
// deadline.
std::chrono::system_clock::time_point DeadlineCancelsFrom(
    std::chrono::system_clock::time_point deadline) {
  if (deadline == std::chrono::system_clock::time_point::max()) return deadline;
  const auto left = std::max(deadline - std::chrono::system_clock::now(),
                             std::chrono::system_clock::duration::zero());
  const auto slack =
      std::max<std::chrono::system_clock::duration>(std::chrono::milliseconds(50), left / 5);
  return deadline - slack;
}

}  // namespace

GenerateReactor::GenerateReactor(EngineCore* scheduler, std::shared_ptr<Stream> stream)
    : scheduler_(scheduler), stream_(std::move(stream)) {
  stream_->reactor = this;
}

GenerateReactor* GenerateReactor::Refuse(grpc::Status status) {
  auto* reactor = new GenerateReactor(nullptr, std::make_shared<Stream>(1, false));
  reactor->stream_->write = WriteState::kFinishing;
  reactor->Finish(std::move(status));
  return reactor;
}

GenerateReactor* GenerateReactor::Start(grpc::CallbackServerContext* context,
                                        const v1::GenerateRequest& request, ServingEngine& engine,
                                        ServerMetrics& metrics, int stream_buffer,
                                        RequestOwners& owners, int owner) {
  const EngineClock::time_point arrival = EngineClock::now();
  auto request_or = ToEngineRequest(request, engine.request_context());
  if (!request_or.ok()) {
    metrics.CountRejected(request_or.status().code());
    return Refuse(ToGrpcStatus(request_or.status()));
  }
  EngineRequest engine_request = *std::move(request_or);
  // Assigned here rather than by the scheduler (sequential ids): nobody can guess another
  // client's id.
  engine_request.id = request.request_id().empty() ? NewRequestId() : request.request_id();
  if (!owners.Add(engine_request.id, owner)) {
    metrics.CountRejected(absl::StatusCode::kInvalidArgument);
    return Refuse(grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("request id '", LoggedId(engine_request.id), "' is already in use")));
  }
  engine_request.deadline = EngineDeadline(*context);

  const bool non_streaming = request.non_streaming();
  auto stream = std::make_shared<Stream>(non_streaming ? 1 : static_cast<size_t>(stream_buffer),
                                         non_streaming);
  // Until gRPC has the reactor, an exception (an allocation failing, for the caller to map to
  // RESOURCE_EXHAUSTED) must leave neither the id registered nor the reactor behind.
  std::unique_ptr<GenerateReactor> owned;
  try {
    owned.reset(new GenerateReactor(engine.scheduler.get(), stream));
  } catch (...) {
    owners.Remove(engine_request.id);
    throw;
  }
  GenerateReactor* reactor = owned.get();
  reactor->owners_ = &owners;
  reactor->owned_id_ = engine_request.id;
  reactor->deadline_cancels_from_ = DeadlineCancelsFrom(context->deadline());
  stream->engine_done = false;

  // Runs on the engine thread: observe, convert, queue; never blocks beyond the stream's mutex.
  OutputCallback on_output =
      [stream, writes = engine.writes.get(), tokenizer = engine.tokenizer(),
       observer =
           RequestObserver(metrics, arrival, std::string(KvPolicyName(*engine_request.kv_policy)))](
          SequenceOutput&& output) mutable {
        observer.OnOutput(output);
        const bool last = output.finished;
        v1::GenerateResponse message = ToGenerateResponse(std::move(output), tokenizer);
        std::lock_guard lock(stream->mu);
        if (last) stream->engine_done = true;
        if (stream->client_gone || stream->reactor == nullptr) return;  // nobody to send to
        stream->queue.Push(std::move(message));
        // The first output goes out at once from here (time to first token); later writes start on
        // the dispatcher's thread, or when the write in flight completes.
        if (stream->write == WriteState::kAwaitingFirst) {
          stream->write = WriteState::kIdle;
          stream->Pump();
          return;
        }
        if (stream->write != WriteState::kIdle) return;
        stream->write = WriteState::kPumpPosted;
        writes->Post([stream] {
          std::lock_guard pump_lock(stream->mu);
          // A cancellation may have finished the call meanwhile.
          if (stream->write == WriteState::kPumpPosted) stream->write = WriteState::kIdle;
          stream->Pump();
          stream->FinishIfGone();
        });
      };

  std::string assigned_id;
  absl::Status submitted;
  try {
    submitted =
        engine.scheduler->Submit(std::move(engine_request), std::move(on_output), &assigned_id);
  } catch (...) {
    {
      std::lock_guard lock(stream->mu);
      stream->reactor = nullptr;  // whatever the engine kept of the callback sends nothing
    }
    owners.Remove(reactor->owned_id_);
    throw;  // `owned` deletes the reactor, which gRPC never saw
  }
  if (!submitted.ok()) {
    metrics.CountRejected(submitted.code());
    grpc::Status status = ToGrpcStatus(ToApiStatus(submitted, request));
    if (submitted.code() == absl::StatusCode::kUnavailable) {
      status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "server is draining");
    }
    std::lock_guard lock(stream->mu);
    stream->engine_done = true;
    stream->write = WriteState::kFinishing;
    reactor->Finish(std::move(status));
    return owned.release();
  }
  reactor->request_id_ = std::move(assigned_id);
  return owned.release();
}

void GenerateReactor::Stream::Pump() {
  if (reactor == nullptr || client_gone || write != WriteState::kIdle || queue.empty()) return;
  // Non-streaming: everything merges into the one queued message until the last output is in.
  if (non_streaming && !IsFinal(queue.back())) return;
  writing = queue.PopAll();
  if (IsFinal(writing)) {
    write = WriteState::kFinishing;
    reactor->StartWriteAndFinish(&writing, grpc::WriteOptions(), grpc::Status::OK);
  } else {
    write = WriteState::kWriting;
    reactor->StartWrite(&writing);
  }
}

void GenerateReactor::Stream::FinishIfGone() {
  // A write in flight finishes the call from OnWriteDone instead.
  if (reactor == nullptr || !client_gone || write == WriteState::kWriting ||
      write == WriteState::kFinishing) {
    return;
  }
  write = WriteState::kFinishing;
  reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
}

void GenerateReactor::OnWriteDone(bool ok) {
  bool cancel = false;
  {
    std::lock_guard lock(stream_->mu);
    if (stream_->write == WriteState::kWriting) stream_->write = WriteState::kIdle;
    if (!ok) {
      stream_->client_gone = true;
      cancel = !stream_->engine_done;
    }
    stream_->Pump();
    stream_->FinishIfGone();
  }
  CancelInEngine(cancel);
}

void GenerateReactor::OnCancel() {
  bool cancel = false;
  {
    std::lock_guard lock(stream_->mu);
    stream_->client_gone = true;
    cancel = !stream_->engine_done;
    stream_->FinishIfGone();
  }
  CancelInEngine(cancel);
}

void GenerateReactor::CancelInEngine(bool cancel) const {
  if (!cancel || scheduler_ == nullptr || request_id_.empty()) return;
  const bool deadline_passed = std::chrono::system_clock::now() >= deadline_cancels_from_;
  scheduler_->Cancel(request_id_,
                     deadline_passed ? FinishReason::kDeadline : FinishReason::kCancelled);
}

void GenerateReactor::OnDone() {
  uint64_t merged = 0;
  {
    std::lock_guard lock(stream_->mu);
    stream_->reactor = nullptr;
    merged = stream_->queue.merged();
  }
  if (merged > 0 && !stream_->non_streaming) {
    spdlog::debug("request {}: the client read slowly; {} outputs merged into earlier messages",
                  LoggedId(request_id_), merged);
  }
  if (owners_ != nullptr) owners_->Remove(owned_id_);
  delete this;
}

}  // namespace kvserve::server
