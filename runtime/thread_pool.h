// A persistent pool of worker threads for splitting one token's work. Workers spin briefly
// between jobs (a token's jobs come microseconds apart) and sleep when idle; dispatching a
// job allocates nothing and takes no lock unless a worker is asleep.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace t2r {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads >= 1; the caller is thread 0
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_; }

  // Calls job(thread, threads) on every thread, the caller included, and returns when all
  // have finished.
  template <typename Job>
  void run(Job& job) {
    dispatch([](void* context, int thread, int threads) { (*static_cast<Job*>(context))(thread, threads); }, &job);
  }

 private:
  using Call = void (*)(void* context, int thread, int threads);
  void dispatch(Call call, void* context);
  void worker(int thread);

  const int threads_;
  std::vector<std::thread> workers_;
  Call call_ = nullptr;
  void* context_ = nullptr;
  std::atomic<unsigned> generation_{0};  // bumped once per job
  std::atomic<int> pending_{0};          // workers still running the current job
  std::atomic<int> sleeping_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
};

// The share of [0, count) that thread `thread` of `threads` takes in a job.
inline void split_range(size_t count, int thread, int threads, size_t* begin, size_t* end) {
  *begin = count * size_t(thread) / size_t(threads);
  *end = count * size_t(thread + 1) / size_t(threads);
}

// Physical cores of this machine (hyperthreads counted once); at least 1.
int physical_core_count();

}  // namespace t2r
