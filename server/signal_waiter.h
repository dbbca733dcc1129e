#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace kvserve::server {

// SIGTERM and SIGINT delivered to one dedicated thread (sigtimedwait) instead of interrupting
// whichever thread happens to run: the rest of the server then reacts on ordinary threads, with
// ordinary locks, rather than in a signal handler.
class SignalWaiter {
 public:
  // Blocks SIGTERM and SIGINT in the calling thread, and so in every thread it starts afterwards
  // (gRPC's, the engine's, the logger's). Call first thing in main. Threads that libraries start
  // before main (OpenBLAS) keep them unblocked: for those a handler counts the signal, which the
  // waiting thread picks up within 100 ms.
  static void BlockTerminationSignals();

  SignalWaiter();   // starts the waiting thread
  ~SignalWaiter();  // stops and joins it
  SignalWaiter(const SignalWaiter&) = delete;
  SignalWaiter& operator=(const SignalWaiter&) = delete;

  // Blocks until the first signal; returns its number.
  int WaitForFirst();
  // Termination signals received so far (a second one during the drain skips the rest of it).
  int received() const { return received_.load(); }
  int last_signal() const { return last_signal_.load(); }

 private:
  void Run();

  std::atomic<bool> stop_{false};
  std::atomic<int> received_{0};
  std::atomic<int> last_signal_{0};
  std::mutex mu_;
  std::condition_variable arrived_;
  std::thread thread_;
};

}  // namespace kvserve::server
