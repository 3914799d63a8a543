#include "thread_pool.h"

#include <fstream>
#include <set>
#include <string>
#include <utility>

namespace t2r {
namespace {

// A few microseconds of spinning before a worker sleeps or the caller yields: longer than the
// gaps between one token's jobs, short enough that when there are more threads than free cores
// (other processes, parallel tests) a waiting thread hands its core back quickly.
constexpr int kSpinIterations = 2000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace

ThreadPool::ThreadPool(int threads) : threads_(threads < 1 ? 1 : threads) {
  for (int t = 1; t < threads_; ++t) workers_.emplace_back(&ThreadPool::worker, this, t);
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::dispatch(Call call, void* context) {
  if (threads_ == 1) {
    call(context, 0, 1);
    return;
  }
  call_ = call;
  context_ = context;
  pending_.store(threads_ - 1, std::memory_order_relaxed);
  // Sequentially consistent, with the worker's side below: either it sees the new generation
  // before sleeping, or we see it sleeping and wake it.
  generation_.fetch_add(1);
  if (sleeping_.load() > 0) {
    std::lock_guard<std::mutex> lock(mutex_);  // pairs with the sleeper's check under the lock
    wake_.notify_all();
  }
  call(context, 0, threads_);
  // A worker that lost its core to another process must get it back: spin, then yield.
  for (int spin = 0; pending_.load(std::memory_order_acquire) > 0; ++spin) {
    if (spin < kSpinIterations) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
}

void ThreadPool::worker(int thread) {
  unsigned seen = 0;
  while (true) {
    unsigned current = generation_.load(std::memory_order_acquire);
    for (int spin = 0; current == seen && spin < kSpinIterations; ++spin) {
      cpu_relax();
      current = generation_.load(std::memory_order_acquire);
    }
    if (current == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      sleeping_.fetch_add(1);
      wake_.wait(lock, [&] { return generation_.load() != seen; });
      sleeping_.fetch_sub(1, std::memory_order_acq_rel);
      current = generation_.load(std::memory_order_acquire);
    }
    if (stop_.load()) return;
    seen = current;
    call_(context_, thread, threads_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

int physical_core_count() {
#if defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__)
  return 1;  // WebAssembly built without threads (README, "WebAssembly and the browser")
#endif
  std::set<std::pair<std::string, std::string>> cores;  // (package, core)
  for (int cpu = 0; cpu < 4096; ++cpu) {
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream package(base + "physical_package_id"), core(base + "core_id");
    std::string p, c;
    if (!(package >> p) || !(core >> c)) break;
    cores.emplace(p, c);
  }
  if (!cores.empty()) return int(cores.size());
  const unsigned logical = std::thread::hardware_concurrency();
  return logical > 0 ? int(logical) : 1;
}

}  // namespace t2r
