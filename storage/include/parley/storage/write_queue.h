// WriteQueue: every write to the database is a job on one queue, drained by one writer thread
// that owns the only write connection (LevelDB's DBImpl::Write shape).
//
// The writer takes whatever is queued (up to max_batch) into one transaction — group commit.
// A job that fails (a constraint violation, say) fails only itself: the batch is then rolled
// back and replayed with a SAVEPOINT per job. After COMMIT it runs each job's on_commit hook (cache
// updates), then completes each job's callback: a job is acknowledged only once its transaction is
// committed to the WAL. With synchronous=NORMAL (the default) a committed transaction survives the
// process being killed at any moment; surviving power loss as well needs synchronous=FULL.
//
// Batching: by default (max_wait 0) the writer never waits — whatever queued up while it
// committed the last batch forms the next one, so batches grow with load by themselves and
// acknowledgements (on a separate completion thread, for all but small batches under light
// load) overlap the next commit. With max_wait > 0
// and fewer than the previous batch's size queued, the writer waits up to max_wait for that
// many (measured in bench_storage: slower on two cores, kept for hosts where it pays).
//
// Overflow policy: at `capacity` queued jobs, submit() completes the job at once with
// resource_exhausted (counted in rejected); nothing blocks the caller.
//
// Thread safety: submit() is safe from any thread. on_commit hooks run on the writer thread
// right after the commit. Completion callbacks run in commit order on the queue's completion
// thread, so that waking the waiting producers overlaps with the writer's next batch — except a
// small batch (up to 4 jobs) committed while the completion thread is idle, which the writer
// completes itself: a lone write then costs one thread wake-up fewer (measured with one client
// in bench_e2e). Callbacks must be short and must never wait for another write (post to an
// executor for anything more). A job refused before it is queued (queue
// stopped or full, or input rejected by a repository) completes at once on the submitting
// thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "parley/base/result.h"
#include "parley/storage/sqlite.h"

namespace parley::storage {

// What a committed job reports: the row it wrote, and whether it inserted a new row (false
// when the row already existed, e.g. a redelivered message).
struct WriteAck {
  int64_t row_id = 0;
  bool inserted = true;
};

using WriteCallback = std::function<void(Result<WriteAck>)>;

struct WriteJob {
  // Runs on the writer thread inside the batch transaction. Exceptions are caught and fail only
  // this job. A failing job makes the writer roll the batch back and replay it with a savepoint
  // per job, so apply may run more than once: it must act only through the connection.
  std::function<Result<WriteAck>(Connection&)> apply;
  // Optional: runs after COMMIT and before `done` (keeps caches in step with the database).
  std::function<void(const WriteAck&)> on_commit;
  // Completion; receives the ack or the job's (or the batch's) error.
  WriteCallback done;
  // A short label for error messages and logs ("append message", "add memory").
  std::string what;
};

struct WriteQueueOptions {
  size_t max_batch = 512;
  std::chrono::microseconds max_wait{0};  // see "Batching" above
  size_t capacity = 65'536;
};

struct WriteQueueStats {
  size_t queue_depth = 0;
  uint64_t batches = 0;
  uint64_t jobs_committed = 0;
  uint64_t jobs_failed = 0;
  uint64_t jobs_rejected = 0;
  uint64_t batches_failed = 0;
  size_t last_batch_size = 0;
  int64_t last_commit_latency_us = 0;  // BEGIN … COMMIT of the last batch
  size_t max_batch_size_seen = 0;
  bool last_batch_failed = false;  // BEGIN or COMMIT failed: nothing of that batch committed
  std::string last_error;          // of the last failed batch ("" before any)
  bool running = false;
};

// A future that is already failed (for input rejected before it reaches the queue).
std::future<Result<WriteAck>> failed_write(Error error);

// Several jobs as one: applied in order in one transaction (and in one savepoint when a batch
// is replayed), so all of them commit or none does. `job`'s ack is the last part's; after it
// succeeded, `acks` holds every part's, in order. The parts' on_commit run in order, each with
// its own ack; their `done` is not used: set `job.done`. `parts` must not be empty.
struct JointJob {
  WriteJob job;
  std::shared_ptr<const std::vector<WriteAck>> acks;
};
JointJob joint(std::vector<WriteJob> parts);

class WriteQueue {
 public:
  // Takes ownership of the write connection and starts the writer thread.
  WriteQueue(Connection conn, WriteQueueOptions options);
  // Drains the queue (every job submitted before is committed or failed), then stops.
  ~WriteQueue();
  WriteQueue(const WriteQueue&) = delete;
  WriteQueue& operator=(const WriteQueue&) = delete;

  void submit(WriteJob job);
  // Submits `job` with its `done` replaced: the future is fulfilled after the commit.
  std::future<Result<WriteAck>> submit_for_future(WriteJob job);
  // Convenience: the future is fulfilled after the commit.
  std::future<Result<WriteAck>> submit(std::function<Result<WriteAck>(Connection&)> apply,
                                       std::function<void(const WriteAck&)> on_commit = {},
                                       std::string what = {});

  // Stops accepting jobs, drains what is queued and joins the writer. Idempotent.
  void stop();

  [[nodiscard]] WriteQueueStats stats() const;

 private:
  struct Completion {
    WriteJob job;
    Result<WriteAck> result;
  };
  void run();
  void process(std::deque<WriteJob>& batch);
  void hand_over(std::vector<Completion> done);
  void run_completions();
  Status exec_cached(std::string_view sql);

  Connection conn_;  // used only by the writer thread after construction
  const WriteQueueOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<WriteJob> queue_;  // GUARDED_BY(mu_)
  bool stopping_ = false;       // GUARDED_BY(mu_)

  std::atomic<uint64_t> batches_{0}, committed_{0}, failed_{0}, rejected_{0}, batches_failed_{0};
  std::atomic<size_t> last_batch_{0}, max_batch_seen_{0};
  std::atomic<int64_t> last_commit_us_{0};
  std::atomic<bool> running_{false};
  std::atomic<bool> last_batch_failed_{false};
  std::string last_error_;  // guarded by mu_

  std::mutex done_mu_;
  std::condition_variable done_cv_;
  std::deque<Completion> done_;  // GUARDED_BY(done_mu_)
  bool done_stopping_ = false;   // GUARDED_BY(done_mu_)
  bool completer_busy_ = false;  // GUARDED_BY(done_mu_): running callbacks it took from done_
  // A batch of at most this many jobs, committed while the completion thread has nothing to
  // do, is completed by the writer itself (see "Thread safety").
  static constexpr size_t kInlineCompletions = 4;

  std::thread completer_;
  std::thread writer_;
};

}  // namespace parley::storage
