#include "parley/storage/write_queue.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <vector>

namespace parley::storage {

namespace {
Result<WriteAck> run_guarded(WriteJob& job, Connection& conn) {
  try {
    if (!job.apply) return fail(ErrorCode::internal, "write job has no apply function");
    return job.apply(conn);
  } catch (const std::exception& e) {
    return fail(ErrorCode::internal, "write job '" + job.what + "' threw: " + e.what());
  } catch (...) {
    return fail(ErrorCode::internal, "write job '" + job.what + "' threw a non-exception");
  }
}

void complete(WriteJob& job, Result<WriteAck> result) {
  if (!job.done) return;
  try {
    job.done(std::move(result));
  } catch (const std::exception& e) {
    spdlog::error("write queue: completion of '{}' threw: {}", job.what, e.what());
  } catch (...) {
    spdlog::error("write queue: completion of '{}' threw", job.what);
  }
}
}  // namespace

WriteQueue::WriteQueue(Connection conn, WriteQueueOptions options)
    : conn_(std::move(conn)), options_(options) {
  running_ = true;
  completer_ = std::thread([this] { run_completions(); });
  writer_ = std::thread([this] { run(); });
}

WriteQueue::~WriteQueue() { stop(); }

void WriteQueue::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  {
    std::lock_guard lock(done_mu_);
    done_stopping_ = true;
  }
  done_cv_.notify_all();
  if (completer_.joinable()) completer_.join();
}

JointJob joint(std::vector<WriteJob> parts) {
  struct State {
    std::vector<WriteJob> parts;
    std::vector<WriteAck> acks;
  };
  auto state = std::make_shared<State>();
  state->parts = std::move(parts);
  JointJob out;
  out.acks = std::shared_ptr<const std::vector<WriteAck>>(state, &state->acks);
  for (const auto& part : state->parts) {
    out.job.what += (out.job.what.empty() ? "" : " + ") + part.what;
  }
  out.job.apply = [state](Connection& conn) -> Result<WriteAck> {
    if (state->parts.empty()) return fail(ErrorCode::invalid_argument, "a joint write of nothing");
    state->acks.clear();  // a replayed batch applies it again
    for (auto& part : state->parts) {
      auto ack = part.apply(conn);
      if (!ack) return fail(std::move(ack).error());
      state->acks.push_back(*ack);
    }
    return state->acks.back();
  };
  out.job.on_commit = [state](const WriteAck&) {
    for (size_t i = 0; i < state->parts.size() && i < state->acks.size(); ++i) {
      if (state->parts[i].on_commit) state->parts[i].on_commit(state->acks[i]);
    }
  };
  return out;
}

void WriteQueue::submit(WriteJob job) {
  std::unique_lock lock(mu_);
  if (stopping_) {
    lock.unlock();
    failed_.fetch_add(1, std::memory_order_relaxed);
    complete(job, fail(ErrorCode::unavailable, "write queue is stopped"));
    return;
  }
  if (queue_.size() >= options_.capacity) {
    lock.unlock();
    rejected_.fetch_add(1, std::memory_order_relaxed);
    complete(job, fail(ErrorCode::resource_exhausted,
                       "write queue is full (" + std::to_string(options_.capacity) + " jobs)"));
    return;
  }
  queue_.push_back(std::move(job));
  // Wake the writer when it waits for work, or when the batch it waits for is complete.
  const bool wake =
      queue_.size() == 1 || queue_.size() >= std::min(last_batch_.load(), options_.max_batch);
  lock.unlock();
  if (wake) cv_.notify_one();
}

std::future<Result<WriteAck>> WriteQueue::submit_for_future(WriteJob job) {
  auto promise = std::make_shared<std::promise<Result<WriteAck>>>();
  auto future = promise->get_future();
  job.done = [promise](Result<WriteAck> r) { promise->set_value(std::move(r)); };
  submit(std::move(job));
  return future;
}

std::future<Result<WriteAck>> WriteQueue::submit(std::function<Result<WriteAck>(Connection&)> apply,
                                                 std::function<void(const WriteAck&)> on_commit,
                                                 std::string what) {
  return submit_for_future(WriteJob{std::move(apply), std::move(on_commit), {}, std::move(what)});
}

std::future<Result<WriteAck>> failed_write(Error error) {
  std::promise<Result<WriteAck>> p;
  p.set_value(fail(std::move(error)));
  return p.get_future();
}

WriteQueueStats WriteQueue::stats() const {
  WriteQueueStats s;
  {
    std::lock_guard lock(mu_);
    s.queue_depth = queue_.size();
    s.last_error = last_error_;
  }
  s.batches = batches_.load();
  s.jobs_committed = committed_.load();
  s.jobs_failed = failed_.load();
  s.jobs_rejected = rejected_.load();
  s.batches_failed = batches_failed_.load();
  s.last_batch_size = last_batch_.load();
  s.last_commit_latency_us = last_commit_us_.load();
  s.max_batch_size_seen = max_batch_seen_.load();
  s.last_batch_failed = last_batch_failed_.load();
  s.running = running_.load();
  return s;
}

void WriteQueue::run() {
  std::deque<WriteJob> batch;
  size_t last = 1;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) break;  // stopping and drained
      // Group commit: give the producers of the last batch a moment to come back.
      const size_t want = std::min(last, options_.max_batch);
      if (queue_.size() < want && options_.max_wait.count() > 0 && !stopping_) {
        cv_.wait_for(lock, options_.max_wait, [&] { return stopping_ || queue_.size() >= want; });
      }
      const size_t n = std::min(queue_.size(), options_.max_batch);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    last = batch.size();
    process(batch);
    batch.clear();
  }
  running_ = false;
}

Status WriteQueue::exec_cached(std::string_view sql) {
  auto st = conn_.cached(sql);
  if (!st) return fail(std::move(st).error());
  return (*st)->run();
}

void WriteQueue::process(std::deque<WriteJob>& batch) {
  const auto started = std::chrono::steady_clock::now();
  last_batch_ = batch.size();
  if (batch.size() > max_batch_seen_.load()) max_batch_seen_ = batch.size();

  std::vector<Result<WriteAck>> results;
  results.reserve(batch.size());

  auto fail_all = [&](const Error& e) {
    batches_failed_.fetch_add(1, std::memory_order_relaxed);
    last_batch_failed_ = true;
    {
      std::lock_guard lock(mu_);
      last_error_ = e.describe();
    }
    spdlog::error("write queue: batch of {} failed: {}", batch.size(), e.describe());
    std::vector<Completion> done;
    done.reserve(batch.size());
    for (auto& job : batch) {
      failed_.fetch_add(1, std::memory_order_relaxed);
      Error mine = e;
      mine.message = "'" + job.what + "' not committed: " + e.message;
      done.push_back({std::move(job), fail(std::move(mine))});
    }
    hand_over(std::move(done));
  };

  if (auto r = exec_cached("BEGIN IMMEDIATE"); !r) {
    fail_all(r.error());
    return;
  }
  // Fast path: the whole batch without savepoints. Jobs rarely fail; when one does, the batch
  // is rolled back and replayed with a savepoint per job, so that only the failing job fails.
  // (This is why apply() may run more than once, and must act only through the connection.)
  bool all_ok = true;
  for (auto& job : batch) {
    results.push_back(run_guarded(job, conn_));
    if (!results.back().ok()) {
      all_ok = false;
      break;
    }
  }
  if (!all_ok) {
    results.clear();
    (void)conn_.exec("ROLLBACK");
    if (auto r = exec_cached("BEGIN IMMEDIATE"); !r) {
      fail_all(r.error());
      return;
    }
    for (auto& job : batch) {
      if (auto r = exec_cached("SAVEPOINT job"); !r) {
        results.emplace_back(fail(r.error()));
        continue;
      }
      auto result = run_guarded(job, conn_);
      if (result.ok()) {
        if (auto r = exec_cached("RELEASE job"); !r) result = fail(r.error());
      }
      if (!result.ok()) {
        // Undo only this job; the batch goes on.
        if (auto r = exec_cached("ROLLBACK TO job"); r.ok()) {
          (void)exec_cached("RELEASE job");
        } else {
          // The transaction itself is gone (e.g. SQLITE_FULL rolled it back): nothing commits.
          (void)conn_.exec("ROLLBACK");
          fail_all(r.error());
          return;
        }
      }
      results.push_back(std::move(result));
    }
  }
  if (auto r = exec_cached("COMMIT"); !r) {
    (void)conn_.exec("ROLLBACK");
    fail_all(r.error());
    return;
  }
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
  last_commit_us_ = us;
  last_batch_failed_ = false;
  batches_.fetch_add(1, std::memory_order_relaxed);

  std::vector<Completion> done;
  done.reserve(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    auto& job = batch[i];
    if (results[i].ok()) {
      committed_.fetch_add(1, std::memory_order_relaxed);
      if (job.on_commit) {
        try {
          job.on_commit(*results[i]);
        } catch (const std::exception& e) {
          spdlog::error("write queue: on_commit of '{}' threw: {}", job.what, e.what());
        }
      }
    } else {
      failed_.fetch_add(1, std::memory_order_relaxed);
    }
    done.push_back({std::move(job), std::move(results[i])});
  }
  hand_over(std::move(done));
}

void WriteQueue::hand_over(std::vector<Completion> done) {
  bool inline_here = false;
  {
    std::lock_guard lock(done_mu_);
    // Nothing handed over earlier is still waiting or running: completing here keeps the
    // commit order, and spares a lone write the wake-up of a second thread.
    inline_here = done.size() <= kInlineCompletions && !completer_busy_ && done_.empty();
    if (!inline_here) {
      for (auto& c : done) done_.push_back(std::move(c));
    }
  }
  if (inline_here) {
    for (auto& c : done) complete(c.job, std::move(c.result));
    return;
  }
  done_cv_.notify_one();
}

void WriteQueue::run_completions() {
  std::deque<Completion> mine;
  for (;;) {
    {
      std::unique_lock lock(done_mu_);
      done_cv_.wait(lock, [&] { return done_stopping_ || !done_.empty(); });
      if (done_.empty()) break;  // stopping and drained
      mine.swap(done_);
      completer_busy_ = true;
    }
    for (auto& c : mine) complete(c.job, std::move(c.result));
    mine.clear();
    std::lock_guard lock(done_mu_);
    completer_busy_ = false;
  }
}

}  // namespace parley::storage
