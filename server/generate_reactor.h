#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "engine/scheduler/engine_core.h"
#include "grpcpp/grpcpp.h"
#include "kvserve/v1/inference.grpc.pb.h"
#include "server/request_owners.h"
#include "server/response_queue.h"
#include "server/server_metrics.h"
#include "server/serving_engine.h"

namespace kvserve::server {

// One Generate call: submits the request to the scheduler and streams its outputs.
//
// The scheduler's output callback runs on the engine thread and must never block, so it only
// pushes into this stream's bounded ResponseQueue under a mutex; it starts the first write itself
// (time to first token) and hands later ones, when no write is in flight, to the WriteDispatcher's
// thread; the gRPC write completions drain the queue, each write taking everything queued. A slow
// reader therefore delays only its own messages and never the engine or other streams.
//
// Lifetime: gRPC deletes nothing; the reactor deletes itself in OnDone. The engine callback holds
// the shared Stream, not the reactor: OnDone clears Stream::reactor under the mutex, and the
// callback touches the reactor only under that mutex while it is set.
class GenerateReactor final : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  // A call refused before it reaches the engine (model loading, draining).
  static GenerateReactor* Refuse(grpc::Status status);
  // Validates `request`, submits it (the call's deadline becomes the engine deadline) and starts
  // streaming; a refusal finishes the call at once with the status mapped from the error. An
  // empty request id gets an unguessable one; the id is registered in `owners` under `owner` for
  // the call's lifetime.
  static GenerateReactor* Start(grpc::CallbackServerContext* context,
                                const v1::GenerateRequest& request, ServingEngine& engine,
                                ServerMetrics& metrics, int stream_buffer, RequestOwners& owners,
                                int owner);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // Where the call's writes stand; one state, so no two writes or finishes can overlap.
  enum class WriteState {
    kAwaitingFirst,  // no output yet: the first goes out at once from the engine thread
    kIdle,           // nothing in flight; the next output posts a Pump
    kPumpPosted,     // a Pump waits on the WriteDispatcher
    kWriting,        // StartWrite called, OnWriteDone pending
    kFinishing,      // Finish or StartWriteAndFinish called: nothing more is written
  };

  // What the reactor and the engine callback share, under `mu`.
  struct Stream {
    Stream(size_t capacity, bool non_streaming) : queue(capacity), non_streaming(non_streaming) {}
    // Starts the next write if none is in flight and the client can take one.
    void Pump();
    // Finishes a call whose client is gone, once no write is in flight.
    void FinishIfGone();

    std::mutex mu;
    ResponseQueue queue;
    const bool non_streaming;  // write nothing until the last output, merged into one message
    GenerateReactor* reactor = nullptr;  // null once OnDone ran
    v1::GenerateResponse writing;        // the message of the write in flight
    WriteState write = WriteState::kAwaitingFirst;
    bool client_gone = false;  // cancelled, deadline passed, or a write failed
    bool engine_done = true;   // no output pending from the engine (false while submitted)
  };

  GenerateReactor(EngineCore* scheduler, std::shared_ptr<Stream> stream);
  // Cancels the engine request when it has not finished yet (outside the stream mutex: the
  // scheduler's lock is taken on the engine thread while it calls into the stream).
  void CancelInEngine(bool cancel) const;

  EngineCore* scheduler_;
  std::shared_ptr<Stream> stream_;
  std::string request_id_;  // as the scheduler knows it, once submitted
  // From when on a client's cancellation is its deadline expiring (system clock); max() when the
  // call has no deadline.
  std::chrono::system_clock::time_point deadline_cancels_from_ =
      std::chrono::system_clock::time_point::max();
  RequestOwners* owners_ = nullptr;  // where request_id_ is registered, if it is
  std::string owned_id_;
};

}  // namespace kvserve::server
