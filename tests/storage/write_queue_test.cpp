// Tests of the write queue: acknowledgement after commit, group commit, per-job failure
// isolation (savepoints), overflow, draining on stop, and exceptions in jobs.
#include "parley/storage/write_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <stdexcept>
#include <thread>
#include <vector>

#include "parley/storage/migrations.h"
#include "support/temp_dir.h"

namespace parley::storage {
namespace write_queue_test {

using parley::testing::TempDir;

class WriteQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = Connection::open(dir_ / "q.db");
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c->exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT UNIQUE NOT NULL)").ok());
    writer_conn_ = std::move(*c);
  }

  std::unique_ptr<WriteQueue> start(WriteQueueOptions o = {}) {
    return std::make_unique<WriteQueue>(std::move(writer_conn_), o);
  }

  static std::function<Result<WriteAck>(Connection&)> insert(std::string v) {
    return [v = std::move(v)](Connection& c) -> Result<WriteAck> {
      auto st = c.cached("INSERT INTO t(v) VALUES (?)");
      if (!st) return fail(std::move(st).error());
      PARLEY_TRY((*st)->bind_all(v).run());
      return WriteAck{c.last_insert_rowid(), true};
    };
  }

  int64_t count_on_reader() {
    auto r = Connection::open(dir_ / "q.db", {.mode = ConnectionOptions::Mode::read_only});
    return *r->query_int64("SELECT count(*) FROM t");
  }

  TempDir dir_;
  Connection writer_conn_;
};

TEST_F(WriteQueueTest, AckCarriesRowIdAndIsVisibleToAReader) {
  auto q = start();
  auto f = q->submit(insert("a"));
  auto r = f.get();
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->row_id, 1);
  // Acknowledged means committed: a separate connection sees it at once.
  EXPECT_EQ(count_on_reader(), 1);
}

TEST_F(WriteQueueTest, ConstraintViolationFailsOnlyItsOwnJob) {
  WriteQueueOptions o;
  o.max_wait = std::chrono::milliseconds(50);
  auto q = start(o);
  // Hold the writer on a slow job so that the next three land in one batch.
  std::promise<void> release;
  auto gate = release.get_future().share();
  auto first = q->submit([gate](Connection& c) -> Result<WriteAck> {
    gate.wait();
    PARLEY_TRY(c.exec("INSERT INTO t(v) VALUES ('first')"));
    return WriteAck{c.last_insert_rowid(), true};
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  auto ok1 = q->submit(insert("x"));
  auto dup = q->submit(insert("x"));  // violates UNIQUE, in the same batch as ok1
  auto ok2 = q->submit(insert("y"));
  release.set_value();
  ASSERT_TRUE(first.get().ok());
  auto r1 = ok1.get();
  auto rd = dup.get();
  auto r2 = ok2.get();
  ASSERT_TRUE(r1.ok());
  ASSERT_FALSE(rd.ok());
  EXPECT_EQ(rd.error().code, ErrorCode::already_exists);
  EXPECT_NE(rd.error().message.find("UNIQUE"), std::string::npos);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(count_on_reader(), 3);
  EXPECT_EQ(q->stats().jobs_failed, 1u);
  EXPECT_GE(q->stats().max_batch_size_seen, 3u) << "ok1, dup and ok2 were batched";
}

TEST_F(WriteQueueTest, FailedJobLeavesNoPartialWrites) {
  auto q = start();
  auto r = q->submit([](Connection& c) -> Result<WriteAck> {
              PARLEY_TRY(c.exec("INSERT INTO t(v) VALUES ('half')"));
              return fail(ErrorCode::invalid_argument, "changed my mind");
            }).get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "changed my mind");
  ASSERT_TRUE(q->submit(insert("whole")).get().ok());
  EXPECT_EQ(count_on_reader(), 1) << "the failed job's insert was rolled back to its savepoint";
}

// A joint write: its parts commit together or not at all, even replayed beside other jobs of
// its batch; each part's on_commit runs with its own ack, in order.
TEST_F(WriteQueueTest, AJointWriteCommitsAllItsPartsOrNone) {
  auto q = start();
  ASSERT_TRUE(q->submit(insert("taken")).get().ok());
  const auto part = [](std::string v, std::vector<int64_t>* committed) {
    WriteJob job;
    job.what = "insert " + v;
    job.apply = insert(std::move(v));
    job.on_commit = [committed](const WriteAck& ack) { committed->push_back(ack.row_id); };
    return job;
  };
  std::vector<int64_t> committed;
  std::vector<WriteJob> parts;
  parts.push_back(part("a", &committed));
  parts.push_back(part("b", &committed));
  auto both = joint(std::move(parts));
  const auto acks = both.acks;
  auto ok = q->submit_for_future(std::move(both.job)).get();
  ASSERT_TRUE(ok.ok()) << ok.error().describe();
  ASSERT_EQ(acks->size(), 2u);
  EXPECT_EQ((*acks)[0].row_id, 2);
  EXPECT_EQ((*acks)[1].row_id, 3);
  EXPECT_EQ(ok->row_id, 3) << "the last part's ack";
  EXPECT_EQ(committed, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(count_on_reader(), 3);

  // The second part fails (a unique value already taken): the first is not kept, and a job
  // queued in the same batch still commits.
  committed.clear();
  parts.clear();
  parts.push_back(part("c", &committed));
  parts.push_back(part("taken", &committed));
  auto failing = q->submit_for_future(joint(std::move(parts)).job);
  auto other = q->submit(insert("d"));
  EXPECT_FALSE(failing.get().ok());
  EXPECT_TRUE(other.get().ok());
  EXPECT_TRUE(committed.empty());
  EXPECT_EQ(count_on_reader(), 4) << "a, b, taken and d; never c";
}

TEST_F(WriteQueueTest, ExceptionInJobBecomesItsError) {
  auto q = start();
  auto r = q->submit([](Connection&) -> Result<WriteAck> { throw std::runtime_error("boom"); }, {},
                     "exploding job")
               .get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::internal);
  EXPECT_NE(r.error().message.find("exploding job"), std::string::npos);
  EXPECT_NE(r.error().message.find("boom"), std::string::npos);
  EXPECT_TRUE(q->submit(insert("after")).get().ok()) << "the writer keeps running";
}

TEST_F(WriteQueueTest, ManyProducersAreGroupCommitted) {
  auto q = start();
  constexpr int kThreads = 16;
  constexpr int kEach = 200;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto r = q->submit(insert(std::to_string(t) + "-" + std::to_string(i))).get();
        if (!r.ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(count_on_reader(), kThreads * kEach);
  const auto s = q->stats();
  EXPECT_EQ(s.jobs_committed, static_cast<uint64_t>(kThreads * kEach));
  EXPECT_LT(s.batches, s.jobs_committed) << "concurrent writers must share transactions";
  EXPECT_GT(s.max_batch_size_seen, 1u);
}

TEST_F(WriteQueueTest, OnCommitRunsBeforeTheAck) {
  auto q = start();
  std::atomic<bool> hook_ran{false};
  auto r = q->submit(insert("a"), [&](const WriteAck&) { hook_ran = true; }).get();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(hook_ran.load());
  // and not for a failed job
  std::atomic<bool> hook_on_failure{false};
  auto bad = q->submit(insert("a"), [&](const WriteAck&) { hook_on_failure = true; }).get();
  ASSERT_FALSE(bad.ok());
  EXPECT_FALSE(hook_on_failure.load());
}

TEST_F(WriteQueueTest, FullQueueRejectsWithResourceExhausted) {
  WriteQueueOptions o;
  o.capacity = 2;
  auto q = start(o);
  std::promise<void> release;
  std::promise<void> holding;
  auto gate = release.get_future().share();
  auto blocker = q->submit([gate, &holding](Connection&) -> Result<WriteAck> {
    holding.set_value();
    gate.wait();
    return WriteAck{};
  });
  holding.get_future().wait();  // the writer holds the blocker: the queue itself is empty
  auto a = q->submit(insert("a"));
  auto b = q->submit(insert("b"));
  auto c = q->submit(insert("c"));  // third queued job: over capacity
  auto rc = c.get();
  ASSERT_FALSE(rc.ok());
  EXPECT_EQ(rc.error().code, ErrorCode::resource_exhausted);
  release.set_value();
  EXPECT_TRUE(a.get().ok());
  EXPECT_TRUE(b.get().ok());
  EXPECT_EQ(q->stats().jobs_rejected, 1u);
}

TEST_F(WriteQueueTest, StopDrainsEverythingQueued) {
  auto q = start();
  std::vector<std::future<Result<WriteAck>>> futures;
  for (int i = 0; i < 500; ++i) futures.push_back(q->submit(insert("v" + std::to_string(i))));
  q->stop();
  for (auto& f : futures) EXPECT_TRUE(f.get().ok());
  EXPECT_EQ(count_on_reader(), 500);
  auto late = q->submit(insert("late")).get();
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, ErrorCode::unavailable);
  EXPECT_FALSE(q->stats().running);
}

TEST_F(WriteQueueTest, FailedCommitFailsEveryJobOfTheBatch) {
  // Another connection holds the write lock past the busy timeout: BEGIN IMMEDIATE fails, and
  // the job must report it rather than claim success.
  auto other = Connection::open(dir_ / "q.db", {.busy_timeout_ms = 0});
  ASSERT_TRUE(other.ok());
  auto conn = std::move(writer_conn_);
  ASSERT_TRUE(conn.exec("PRAGMA busy_timeout=50").ok());
  ASSERT_TRUE(other->exec("BEGIN IMMEDIATE").ok());
  WriteQueue q(std::move(conn), {});
  auto r = q.submit(insert("blocked")).get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::unavailable) << r.error().message;
  EXPECT_NE(r.error().message.find("not committed"), std::string::npos);
  EXPECT_TRUE(q.stats().last_batch_failed) << "health shows it";
  ASSERT_TRUE(other->exec("COMMIT").ok());
  EXPECT_TRUE(q.submit(insert("later")).get().ok());
  EXPECT_EQ(q.stats().batches_failed, 1u);
  EXPECT_FALSE(q.stats().last_batch_failed);
}

}  // namespace write_queue_test
}  // namespace parley::storage
