// The emulated streams and events (stream_scheduler.h).

#include "stream_scheduler.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "cuda_runtime.h"

// A stream capture: the work its streams recorded, in issue order (one legal order of the graph:
// every wait names a record issued before it), the streams it forked into and how much of each
// the origin has joined back. Joins count when the origin itself waits on the forked stream.
struct StreamCapture {
  CUstream_st* origin = nullptr;
  std::vector<std::function<cudaError_t()>> work;
  bool invalidated = false;
  std::map<CUstream_st*, uint64_t> joined;  // forked stream -> its items the origin waited for
};

// A stream: its flags and the work given to it that has not run yet.
struct CUstream_st {
  unsigned flags = 0;
  struct Item {
    uint64_t id = 0;                 // issue order across all streams
    cudaEvent_t wait_for = nullptr;  // set: this item waits for `wait_generation` of that event
    uint64_t wait_generation = 0;
    std::function<cudaError_t()> work;  // null for a wait
  };
  std::deque<Item> pending;
  // While capturing (begun here, or forked into by a wait on a captured event): the capture, and
  // how many items this stream added to it.
  std::shared_ptr<StreamCapture> capture;
  uint64_t captured = 0;
};

// A captured graph and its instantiation: the work, in issue order.
struct CUgraph_st {
  std::vector<std::function<cudaError_t()>> work;
};
struct CUgraphExec_st {
  std::vector<std::function<cudaError_t()>> work;
};

// An event: how often it has been recorded, and how many of those records have completed. A
// record inside a capture is a node of the graph, not a record of the event: it only says which
// capture, stream and point a wait on it joins.
struct CUevent_st {
  unsigned flags = 0;
  std::weak_ptr<StreamCapture> capture;
  CUstream_st* captured_on = nullptr;
  uint64_t captured_at = 0;
  uint64_t recorded = 0;
  uint64_t completed = 0;
};

namespace kvserve::cuda_emulator {
namespace {

StreamSchedule ScheduleFromEnvironment() {
  const char* s = std::getenv("KVSERVE_CUDA_EMULATOR_STREAMS");
  if (s == nullptr || std::strcmp(s, "eager") == 0) return StreamSchedule::kEager;
  if (std::strcmp(s, "issue") == 0) return StreamSchedule::kIssueOrder;
  if (std::strcmp(s, "latest") == 0) return StreamSchedule::kLatestFirst;
  std::fprintf(stderr,
               "cuda emulator: KVSERVE_CUDA_EMULATOR_STREAMS=%s is not eager|issue|latest\n", s);
  std::abort();
}

struct Scheduler {
  StreamSchedule schedule = ScheduleFromEnvironment();
  uint64_t next_id = 0;
  std::set<cudaStream_t> streams;
  cudaError_t deferred_error = cudaSuccess;  // the first error of deferred work
};

Scheduler& State() {
  static Scheduler scheduler;
  return scheduler;
}

uint64_t& HostWaits() {
  static uint64_t waits = 0;
  return waits;
}

bool Runnable(const CUstream_st::Item& item) {
  return item.wait_for == nullptr || item.wait_for->completed >= item.wait_generation;
}

// Runs one runnable head of a queue, chosen by the schedule; false when none can run.
bool RunOne() {
  Scheduler& s = State();
  cudaStream_t chosen = nullptr;
  for (cudaStream_t stream : s.streams) {
    if (stream->pending.empty() || !Runnable(stream->pending.front())) continue;
    const uint64_t id = stream->pending.front().id;
    if (chosen == nullptr ||
        (s.schedule == StreamSchedule::kLatestFirst ? id > chosen->pending.front().id
                                                    : id < chosen->pending.front().id)) {
      chosen = stream;
    }
  }
  if (chosen == nullptr) return false;
  CUstream_st::Item item = std::move(chosen->pending.front());
  chosen->pending.pop_front();
  if (item.work) {
    const cudaError_t err = item.work();
    if (err != cudaSuccess && s.deferred_error == cudaSuccess) s.deferred_error = err;
  }
  return true;
}

// Runs work until `done` holds; a wait that can never be met is an error.
cudaError_t RunUntil(const std::function<bool()>& done) {
  Scheduler& s = State();
  while (!done()) {
    if (!RunOne()) {
      std::fputs("cuda emulator: streams wait for each other forever\n", stderr);
      return cudaErrorLaunchFailure;
    }
  }
  const cudaError_t err = s.deferred_error;
  s.deferred_error = cudaSuccess;
  return err;
}

bool Blocking(cudaStream_t stream) { return (stream->flags & cudaStreamNonBlocking) == 0; }

// A call the capture of `stream` cannot take: the capture is invalidated, the call refused.
cudaError_t RefuseWhileCapturing(cudaStream_t stream) {
  stream->capture->invalidated = true;
  return cudaErrorStreamCaptureUnsupported;
}

// Adds `work` to the capture `stream` takes part in.
void Capture(cudaStream_t stream, std::function<cudaError_t()> work) {
  stream->capture->work.push_back(std::move(work));
  ++stream->captured;
}

cudaStream_t CapturingStream() {
  for (cudaStream_t t : State().streams) {
    if (t->capture) return t;
  }
  return nullptr;
}

}  // namespace

void SetStreamSchedule(StreamSchedule schedule) {
  DrainAll();
  State().schedule = schedule;
}

StreamSchedule GetStreamSchedule() { return State().schedule; }

uint64_t HostWaitCount() { return HostWaits(); }

void CountHostWait() { ++HostWaits(); }

cudaError_t Enqueue(cudaStream_t stream, std::function<cudaError_t()> work) {
  Scheduler& s = State();
  if (stream == nullptr) {
    if (cudaStream_t capturing = CapturingStream()) return RefuseWhileCapturing(capturing);
    // The legacy default stream waits for every blocking stream, then runs.
    if (const cudaError_t err = DrainStream(nullptr); err != cudaSuccess) return err;
    return work();
  }
  if (stream->capture) {
    Capture(stream, std::move(work));
    return cudaSuccess;
  }
  if (s.schedule == StreamSchedule::kEager) return work();
  stream->pending.push_back({.id = ++s.next_id, .work = std::move(work)});
  return cudaSuccess;
}

cudaError_t DrainStream(cudaStream_t stream) {
  Scheduler& s = State();
  if (stream != nullptr && stream->capture) return RefuseWhileCapturing(stream);
  if (stream != nullptr) return RunUntil([stream] { return stream->pending.empty(); });
  return RunUntil([&s] {
    for (cudaStream_t t : s.streams) {
      if (Blocking(t) && !t->pending.empty()) return false;
    }
    return true;
  });
}

cudaError_t DrainAll() {
  Scheduler& s = State();
  return RunUntil([&s] {
    for (cudaStream_t t : s.streams) {
      if (!t->pending.empty()) return false;
    }
    return true;
  });
}

}  // namespace kvserve::cuda_emulator

namespace emu = kvserve::cuda_emulator;

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  if (stream == nullptr || (flags & ~cudaStreamNonBlocking) != 0) return cudaErrorInvalidValue;
  *stream = new CUstream_st{.flags = flags};
  emu::State().streams.insert(*stream);
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  return cudaStreamCreateWithFlags(stream, cudaStreamDefault);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (stream == nullptr) return cudaErrorInvalidValue;
  // CUDA lets queued work finish before the stream's resources go.
  const cudaError_t err = emu::DrainStream(stream);
  emu::State().streams.erase(stream);
  delete stream;
  return err;
}

cudaError_t cudaDeviceSynchronize() {
  ++emu::HostWaits();
  return emu::DrainAll();
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  ++emu::HostWaits();
  return emu::DrainStream(stream);
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  if (event == nullptr || (flags & ~(cudaEventDisableTiming | cudaEventBlockingSync)) != 0) {
    return cudaErrorInvalidValue;
  }
  *event = new CUevent_st{.flags = flags};
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  return cudaEventCreateWithFlags(event, cudaEventDefault);
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (event == nullptr) return cudaErrorInvalidValue;
  // A record still queued completes before the event goes (CUDA defers the release); the waits
  // on it are then met, and forget it.
  const cudaError_t err = emu::RunUntil([event] { return event->completed >= event->recorded; });
  for (cudaStream_t stream : emu::State().streams) {
    for (CUstream_st::Item& item : stream->pending) {
      if (item.wait_for == event) item.wait_for = nullptr;
    }
  }
  delete event;
  return err;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (event == nullptr) return cudaErrorInvalidValue;
  if (stream != nullptr && stream->capture) {
    emu::Capture(stream, [] { return cudaSuccess; });
    event->capture = stream->capture;
    event->captured_on = stream;
    event->captured_at = stream->captured;
    return cudaSuccess;
  }
  event->capture.reset();
  const uint64_t generation = ++event->recorded;
  return emu::Enqueue(stream, [event, generation] {
    if (event->completed < generation) event->completed = generation;
    return cudaSuccess;
  });
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
  if (event == nullptr || flags != 0) return cudaErrorInvalidValue;
  const std::shared_ptr<StreamCapture> captured = event->capture.lock();
  if (stream != nullptr && stream->capture) {
    // A capture takes no dependency on work outside it.
    if (captured != stream->capture) return emu::RefuseWhileCapturing(stream);
    emu::Capture(stream, [] { return cudaSuccess; });
    if (stream == captured->origin && event->captured_on != stream) {
      uint64_t& joined = captured->joined[event->captured_on];
      joined = std::max(joined, event->captured_at);
    }
    return cudaSuccess;  // recorded earlier in this capture: the issue order already holds it
  }
  if (captured != nullptr && stream != nullptr) {
    // A wait on a captured record forks the capture into this stream (it must join back).
    if (const cudaError_t err = emu::DrainStream(stream); err != cudaSuccess) return err;
    stream->capture = captured;
    stream->captured = 0;
    captured->joined.emplace(stream, 0);
    emu::Capture(stream, [] { return cudaSuccess; });
    return cudaSuccess;
  }
  if (captured != nullptr) return emu::RefuseWhileCapturing(captured->origin);
  // The wait is for the event's latest record at the time of the call (none: nothing to wait for).
  const uint64_t generation = event->recorded;
  if (stream == nullptr) {
    ++emu::HostWaits();
    const cudaError_t err = emu::RunUntil([&] { return event->completed >= generation; });
    if (err != cudaSuccess) return err;
    return emu::DrainStream(nullptr);
  }
  if (emu::State().schedule == emu::StreamSchedule::kEager) return cudaSuccess;
  stream->pending.push_back(
      {.id = ++emu::State().next_id, .wait_for = event, .wait_generation = generation});
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (event == nullptr) return cudaErrorInvalidValue;
  const uint64_t generation = event->recorded;
  ++emu::HostWaits();
  return emu::RunUntil([&] { return event->completed >= generation; });
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
  if (event == nullptr) return cudaErrorInvalidValue;
  return event->completed >= event->recorded ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (ms == nullptr || start == nullptr || end == nullptr) return cudaErrorInvalidValue;
  if ((start->flags | end->flags) & cudaEventDisableTiming) return cudaErrorInvalidValue;
  if (start->completed < start->recorded || end->completed < end->recorded) {
    return cudaErrorNotReady;
  }
  *ms = 0.0f;  // emulated work takes no device time
  return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  if (stream == nullptr || mode > cudaStreamCaptureModeRelaxed) return cudaErrorInvalidValue;
  if (stream->capture) return cudaErrorIllegalState;
  // Work already queued is not part of the graph.
  if (const cudaError_t err = emu::DrainStream(stream); err != cudaSuccess) return err;
  stream->capture = std::make_shared<StreamCapture>();
  stream->capture->origin = stream;
  stream->captured = 0;
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  if (stream == nullptr || graph == nullptr) return cudaErrorInvalidValue;
  if (!stream->capture || stream->capture->origin != stream) return cudaErrorIllegalState;
  const std::shared_ptr<StreamCapture> capture = std::move(stream->capture);
  bool unjoined = false;
  for (cudaStream_t t : emu::State().streams) {
    if (t->capture != capture) continue;
    unjoined |= t->captured > capture->joined[t];
    t->capture.reset();
  }
  *graph = nullptr;
  if (capture->invalidated) return cudaErrorStreamCaptureInvalidated;
  if (unjoined) return cudaErrorStreamCaptureUnjoined;
  *graph = new CUgraph_st{.work = std::move(capture->work)};
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  if (status == nullptr) return cudaErrorInvalidValue;
  *status = stream == nullptr || !stream->capture ? cudaStreamCaptureStatusNone
            : stream->capture->invalidated        ? cudaStreamCaptureStatusInvalidated
                                                  : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph,
                                 unsigned long long flags) {
  if (exec == nullptr || graph == nullptr || flags != 0) return cudaErrorInvalidValue;
  *exec = new CUgraphExec_st{.work = graph->work};
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  if (exec == nullptr) return cudaErrorInvalidValue;
  if (stream != nullptr && stream->capture) return cudaErrorStreamCaptureUnsupported;
  for (const auto& work : exec->work) {
    if (const cudaError_t err = emu::Enqueue(stream, work); err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  // Launches already issued keep their own copies of the work.
  delete exec;
  return cudaSuccess;
}
