#include "server/signal_waiter.h"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <ctime>

namespace kvserve::server {
namespace {

// Signals caught by the handler below: a thread that did not inherit the mask (OpenBLAS starts
// its workers from a library constructor, before main) may be the one the kernel picks for a
// process-directed SIGTERM. The handler only counts it; the waiting thread polls the count.
std::atomic<int> g_handled_count{0};
std::atomic<int> g_handled_signal{0};

void CountSignal(int signal) {
  g_handled_signal.store(signal);
  g_handled_count.fetch_add(1);
}

sigset_t TerminationSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

void SignalWaiter::BlockTerminationSignals() {
  const sigset_t set = TerminationSet();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  struct sigaction action {};
  action.sa_handler = CountSignal;
  sigfillset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

SignalWaiter::SignalWaiter() : thread_([this] { Run(); }) {}

SignalWaiter::~SignalWaiter() {
  stop_.store(true);
  thread_.join();
}

void SignalWaiter::Run() {
  const sigset_t set = TerminationSet();
  // A short timeout lets the destructor stop the thread without a signal, and bounds how late a
  // signal caught by the handler on another thread is noticed.
  const timespec timeout{.tv_sec = 0, .tv_nsec = 100'000'000};
  int handled_seen = 0;
  while (!stop_.load()) {
    int signal = sigtimedwait(&set, nullptr, &timeout);
    int arrived = signal > 0 ? 1 : 0;
    const int handled = g_handled_count.load();
    if (handled > handled_seen) {
      arrived += handled - handled_seen;
      handled_seen = handled;
      if (signal <= 0) signal = g_handled_signal.load();
    }
    if (arrived == 0) continue;  // timeout or EINTR
    {
      std::lock_guard lock(mu_);
      last_signal_.store(signal);
      received_.fetch_add(arrived);
    }
    arrived_.notify_all();
  }
}

int SignalWaiter::WaitForFirst() {
  std::unique_lock lock(mu_);
  arrived_.wait(lock, [this] { return received_.load() > 0; });
  return last_signal_.load();
}

}  // namespace kvserve::server
