// What the benchmarks share besides their report (bench_report.h): the error they throw, time
// conversions, a temporary directory, the descriptor limit, and what a process holds as
// /proc shows it — read once, or sampled on a thread of its own (ProcessSampler). Header-only.
// The free functions are safe from any thread; TempDir is single-threaded; ProcessSampler says.
#pragma once

#include <pthread.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "bench_report.h"

namespace parley::bench {

// What a bench throws on a failure of its own; main prints it and exits 1.
class BenchError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using SteadyClock = std::chrono::steady_clock;

inline double millis(SteadyClock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

inline double micros(SteadyClock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

inline double seconds_since(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

inline double mib_from_kib(long kib) { return static_cast<double>(kib) / 1024.0; }

// A mkdtemp directory `<parent>/<prefix>XXXXXX` (parent empty: the system temp directory,
// $TMPDIR or /tmp), removed with everything in it on destruction unless kept.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix, const std::filesystem::path& parent = {},
                   bool keep = false)
      : keep_(keep) {
    const std::filesystem::path base =
        parent.empty() ? std::filesystem::temp_directory_path() : parent;
    std::filesystem::create_directories(base);
    std::string pattern = (base / (std::string(prefix) + "XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw BenchError("mkdtemp failed under " + base.string());
    }
    path_ = pattern;
  }
  ~TempDir() {
    if (keep_) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] bool kept() const { return keep_; }
  void keep() { keep_ = true; }

 private:
  std::filesystem::path path_;
  bool keep_;
};

// RLIMIT_NOFILE of this process (and so of the children it starts after) raised to the hard
// limit; returns the soft limit in force.
inline rlim_t raise_nofile_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) throw BenchError("getrlimit(RLIMIT_NOFILE) failed");
  if (rl.rlim_cur != rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      note("setrlimit(RLIMIT_NOFILE, {}): {}", rl.rlim_max, std::strerror(errno));
      ::getrlimit(RLIMIT_NOFILE, &rl);
    }
  }
  return rl.rlim_cur;
}

// ---- What a process holds, from /proc/PID (kThisProcess: /proc/self) ----

constexpr pid_t kThisProcess = 0;

inline std::string proc_dir(pid_t pid) {
  return pid == kThisProcess ? std::string("/proc/self") : "/proc/" + std::to_string(pid);
}

struct ProcStatus {
  long rss_kib = 0;  // VmRSS
  long hwm_kib = 0;  // VmHWM: the peak resident set so far
  long threads = 0;
};

// All zero when the process is gone.
inline ProcStatus proc_status(pid_t pid) {
  std::ifstream in(proc_dir(pid) + "/status");
  ProcStatus s;
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("VmRSS:")) s.rss_kib = std::strtol(line.c_str() + 6, nullptr, 10);
    if (line.starts_with("VmHWM:")) s.hwm_kib = std::strtol(line.c_str() + 6, nullptr, 10);
    if (line.starts_with("Threads:")) s.threads = std::strtol(line.c_str() + 8, nullptr, 10);
  }
  return s;
}

// Open descriptors. Listing /proc/self/fd takes a descriptor of its own, which is not counted.
// It costs a few ms with 20,000 descriptors open.
inline size_t open_fds(pid_t pid) {
  std::error_code ec;
  size_t n = 0;
  for (std::filesystem::directory_iterator it(proc_dir(pid) + "/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++n;
  }
  if (pid == kThisProcess && n > 0) --n;
  return n;
}

// Samples a process's threads, descriptors and resident set every `period` on a thread of its
// own (named "sampler") until stop(), keeping the peaks; `hook`, when given, is called on that
// thread after each sample, for what a bench samples besides. Sampling this process, the
// sampler's thread is among the threads counted.
class ProcessSampler {
 public:
  struct Sample {
    long threads = 0;
    size_t fds = 0;
    long rss_kib = 0;
  };
  using Hook = std::function<void(const Sample&)>;

  ProcessSampler(pid_t pid, std::chrono::milliseconds period, Hook hook = {})
      : pid_(pid), period_(period), hook_(std::move(hook)), thread_([this] { run(); }) {}
  ~ProcessSampler() { stop(); }
  ProcessSampler(const ProcessSampler&) = delete;
  ProcessSampler& operator=(const ProcessSampler&) = delete;

  // Takes a last sample and joins the thread. Idempotent.
  void stop() {
    {
      const std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  // REQUIRES: stop() was called.
  [[nodiscard]] long threads_peak() const { return peak_.threads; }
  [[nodiscard]] size_t fds_peak() const { return peak_.fds; }
  [[nodiscard]] long rss_peak_kib() const { return peak_.rss_kib; }
  [[nodiscard]] size_t samples() const { return samples_; }

 private:
  void run() {
    ::pthread_setname_np(::pthread_self(), "sampler");
    std::unique_lock lock(mu_);
    do {
      sample();
    } while (!cv_.wait_for(lock, period_, [this] { return stopping_; }));
    sample();
  }

  void sample() {
    ++samples_;
    const ProcStatus status = proc_status(pid_);
    const Sample s{status.threads, open_fds(pid_), status.rss_kib};
    peak_.threads = std::max(peak_.threads, s.threads);
    peak_.fds = std::max(peak_.fds, s.fds);
    peak_.rss_kib = std::max(peak_.rss_kib, s.rss_kib);
    if (hook_) hook_(s);
  }

  const pid_t pid_;
  const std::chrono::milliseconds period_;
  const Hook hook_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  // Written by the sampler thread only; read after stop() joined it.
  Sample peak_;
  size_t samples_ = 0;
  std::thread thread_;  // last: starts once the fields above exist
};

// Ranks 0..n-1 with P(k) ∝ 1/(k+1)^s: a precomputed CDF and a binary search per draw (the
// word frequencies of generated text in bench_storage and bench_memory).
class ZipfSampler {
 public:
  ZipfSampler(size_t n, double s) : cdf_(n) {
    double sum = 0.0;
    for (size_t k = 0; k < n; ++k) {
      sum += 1.0 / std::pow(static_cast<double>(k + 1), s);
      cdf_[k] = sum;
    }
    for (double& c : cdf_) c /= sum;
  }

  template <typename Generator>
  size_t operator()(Generator& rng) const {
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    const auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
    return std::min(static_cast<size_t>(it - cdf_.begin()), cdf_.size() - 1);
  }

 private:
  std::vector<double> cdf_;
};

}  // namespace parley::bench
