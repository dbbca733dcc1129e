#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace kvserve::server {

// One thread that starts the streams' gRPC writes for the engine thread: StartWrite serializes
// the message and often sends it inline, work the engine thread should not do between steps.
// Jobs run in submission order; the destructor runs what is queued, then joins.
class WriteDispatcher {
 public:
  WriteDispatcher();
  ~WriteDispatcher();
  WriteDispatcher(const WriteDispatcher&) = delete;
  WriteDispatcher& operator=(const WriteDispatcher&) = delete;

  void Post(std::function<void()> job);

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kvserve::server
