// Crash safety of the store: a child process (crash_writer) writes under load and is killed
// with SIGKILL at a random moment; on reopen, every write whose acknowledgement the child had
// reported (through a pipe) before the kill is present with its row id, PRAGMA integrity_check
// is ok and the FTS5 index agrees with its content table.
//
// 24 rounds on the same database file, so every round recovers what the previous kill left
// behind; a sixth of the kills come early, while the child may still be opening the store
// (recovering, or in round 0 migrating). In some rounds (chosen by the RNG) the test keeps a
// read-only connection open from that round's check to the next one: the check's clean close
// then cannot checkpoint and delete the WAL, so the WAL and its shared-memory index carry
// over into the next child and the next recovery.
//
// The kill delays and the WAL choices come from a seeded RNG; the seed is printed and
// recorded as a test property. Replay with PARLEY_CRASH_SEED=<seed> (the kill moments are
// wall-clock, so a replay repeats the schedule, not the exact interleaving).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "parley/storage/migrations.h"
#include "parley/storage/sqlite.h"
#include "parley/storage/store.h"
#include "support/temp_dir.h"

extern char** environ;  // NOLINT: POSIX

namespace parley::storage {
namespace crash_safety_test {

using parley::testing::TempDir;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr const char* kWriter = PARLEY_CRASH_WRITER;
constexpr int kRounds = 24;
constexpr int kMinKillMs = 20;
constexpr int kMaxKillMs = 250;
// A writer that has not said it is ready by then is killed anyway (and the round shows it).
constexpr milliseconds kReadyTimeout{30'000};
// Some rounds kill sooner, while the child may still be opening the store: recovering the last
// round's WAL, or (round 0) creating and migrating the database.
constexpr double kEarlyKillShare = 1.0 / 6;
constexpr const char* kChannel = "crash";  // as in crash_writer.cpp
constexpr size_t kMaxListed = 10;          // missing writes listed in a failure message

// ---- RAII for the file descriptors and the child ----

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&&) = delete;
  ~UniqueFd() { reset(); }
  [[nodiscard]] int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Owns a running child: the destructor kills and reaps it, so that no failed assertion leaves a
// writer behind (or a zombie).
class ChildGuard {
 public:
  explicit ChildGuard(pid_t pid) : pid_(pid) {}
  ChildGuard(const ChildGuard&) = delete;
  ChildGuard& operator=(const ChildGuard&) = delete;
  ~ChildGuard() { (void)kill_and_wait(); }

  // SIGKILL, then waitpid; the wait status (of whatever ended the child, which may have been
  // something before the kill).
  int kill_and_wait() {
    if (pid_ <= 0) return status_;
    ::kill(pid_, SIGKILL);  // harmless if it already exited: it stays a zombie until reaped
    while (::waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status_;
  }

 private:
  pid_t pid_;
  int status_ = 0;
};

// ---- the report protocol (see crash_writer.cpp) ----

struct AckedMessage {
  std::string platform_id;
  int64_t row_id = 0;
};

struct AckedMemory {
  int64_t row_id = 0;
  std::string token;
};

struct Reports {
  bool ready = false;
  int ready_ms = -1;  // after the start, when seen before the kill
  int64_t user_id = 0;
  std::vector<AckedMessage> messages;
  std::vector<AckedMemory> memories;
  std::vector<std::string> errors;  // protocol violations
};

bool parse_int64(std::string_view s, int64_t& out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

class ReportParser {
 public:
  explicit ReportParser(Reports& out) : out_(out) {}

  void feed(std::string_view bytes) {
    buffer_.append(bytes);
    size_t start = 0;
    for (size_t nl = buffer_.find('\n'); nl != std::string::npos; nl = buffer_.find('\n', start)) {
      parse_line(std::string_view(buffer_).substr(start, nl - start));
      start = nl + 1;
    }
    buffer_.erase(0, start);
  }

  // At end of stream: a partial line means a record was not written atomically.
  void finish() {
    if (!buffer_.empty()) out_.errors.push_back("partial record at end of stream: " + buffer_);
    buffer_.clear();
  }

 private:
  void parse_line(std::string_view line) {
    const auto bad = [&] { out_.errors.push_back("bad record: '" + std::string(line) + "'"); };
    if (line.size() < 2 || line[1] != ' ') return bad();
    const std::string_view rest = line.substr(2);
    const size_t sp = rest.find(' ');
    if (sp == std::string_view::npos) return bad();
    const std::string_view first = rest.substr(0, sp);
    const std::string_view second = rest.substr(sp + 1);
    int64_t id = 0;
    if (line[0] == 'R') {  // R <pid> <conversation id> <user id>
      const size_t sp2 = second.find(' ');
      if (sp2 == std::string_view::npos || !parse_int64(second.substr(sp2 + 1), id)) return bad();
      out_.ready = true;
      out_.user_id = id;
    } else if (line[0] == 'A') {
      if (first.empty() || !parse_int64(second, id)) return bad();
      out_.messages.push_back(AckedMessage{std::string(first), id});
    } else if (line[0] == 'M') {
      if (second.empty() || !parse_int64(first, id)) return bad();
      out_.memories.push_back(AckedMemory{id, std::string(second)});
    } else {
      bad();
    }
  }

  Reports& out_;
  std::string buffer_;
};

// Reads what is available; false at end of stream.
bool read_some(int fd, ReportParser& parser) {
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;  // EOF (or an error, which ends the stream just the same)
    parser.feed(std::string_view(buf, static_cast<size_t>(n)));
    return true;
  }
}

// ---- helpers ----

uint64_t choose_seed() {
  if (const char* env = std::getenv("PARLEY_CRASH_SEED"); env != nullptr && *env != '\0') {
    uint64_t seed = 0;
    const std::string_view s(env);
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), seed);
    if (ec == std::errc() && end == s.data() + s.size()) return seed;
    ADD_FAILURE() << "PARLEY_CRASH_SEED is not a number: " << env;
  }
  return (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return "killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  return "wait status " + std::to_string(status);
}

// Starts crash_writer with stdout on `report_fd` and stderr in `stderr_path`.
pid_t spawn_writer(const std::filesystem::path& db, int report_fd,
                   const std::filesystem::path& stderr_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, report_fd, STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::string arg0 = kWriter;
  std::string arg1 = db.string();
  std::string arg2 = "-";
  char* argv[] = {arg0.data(), arg1.data(), arg2.data(), nullptr};
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, kWriter, &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    ADD_FAILURE() << "posix_spawn " << kWriter << ": " << std::strerror(rc);
    return -1;
  }
  return pid;
}

struct RoundStats {
  int kill_ms = 0;
  bool keep_wal = false;  // a connection stayed open across this round's check
  bool ready = false;
  int ready_ms = -1;
  size_t messages = 0;
  size_t memories = 0;
  int64_t wal_bytes = 0;  // before the reopen
  long check_ms = 0;
};

std::string summary(const std::vector<RoundStats>& rounds) {
  std::ostringstream s;
  for (size_t i = 0; i < rounds.size(); ++i) {
    const auto& r = rounds[i];
    s << "  round " << i << ": kill after " << r.kill_ms << " ms, "
      << (r.ready_ms >= 0 ? "ready after " + std::to_string(r.ready_ms) + " ms"
          : r.ready       ? std::string("ready")
                          : std::string("not ready"))
      << ", " << r.messages << " message acks, " << r.memories << " memory acks, wal "
      << r.wal_bytes << " bytes before reopen" << (r.keep_wal ? " (WAL kept)" : "") << ", check "
      << r.check_ms << " ms\n";
  }
  return s.str();
}

// Runs one child for `kill_after`, kills it, and returns every ack it reported (those still in
// the pipe after its death included).
// Kills the writer `kill_after` from its spawn (an early kill, during startup) or, with
// `after_ready`, from its first report that it is ready: a loaded machine (sanitizers, a build
// alongside) then delays the kill instead of leaving a round without a single write.
void run_child(const TempDir& dir, const std::filesystem::path& db, int round,
               milliseconds kill_after, bool after_ready, Reports& reports) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0) << std::strerror(errno);
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  const auto stderr_path = dir / ("writer-" + std::to_string(round) + ".stderr");

  const pid_t pid = spawn_writer(db, write_end.get(), stderr_path);
  ASSERT_GT(pid, 0);
  ChildGuard child(pid);
  write_end.reset();  // the child holds the only write end: its death is our end of stream

  ReportParser parser(reports);
  const auto start = steady_clock::now();
  auto deadline = after_ready ? start + kReadyTimeout : start + kill_after;
  bool eof = false;
  while (!eof) {
    const auto left = std::chrono::ceil<milliseconds>(deadline - steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{read_end.get(), POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno != EINTR) FAIL() << "poll: " << std::strerror(errno);
    if (r > 0) eof = !read_some(read_end.get(), parser);
    if (reports.ready && reports.ready_ms < 0) {
      reports.ready_ms = static_cast<int>(
          std::chrono::duration_cast<milliseconds>(steady_clock::now() - start).count());
      if (after_ready) deadline = steady_clock::now() + kill_after;
    }
  }

  const int status = child.kill_and_wait();
  // Everything the child wrote before it died is still in the pipe: those acks count too.
  while (read_some(read_end.get(), parser)) {
  }
  parser.finish();

  // Only our SIGKILL may have ended it; anything else (a failed ack, a sanitizer report, a
  // crash, a child that never started) is a failure of its own.
  const bool killed_by_us = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  ASSERT_TRUE(killed_by_us) << "crash_writer " << describe_status(status)
                            << " before it was killed; " << reports.messages.size()
                            << " message acks; stderr:\n"
                            << read_file(stderr_path);
  for (const auto& e : reports.errors) ADD_FAILURE() << "report stream: " << e;
}

// Reopens the store after a kill and checks that every acknowledged write is there and the
// database is intact.
void check_database(const std::filesystem::path& db, const std::vector<AckedMessage>& messages,
                    const std::vector<AckedMemory>& memories, const Reports& last_round,
                    int64_t user_id) {
  auto opened = Store::open(StoreOptions{.path = db});
  ASSERT_TRUE(opened.ok()) << "reopen after the kill: " << opened.error().describe();
  std::unique_ptr<Store> store = std::move(*opened);
  EXPECT_EQ(store->migration().to, latest_schema_version());

  // Every acknowledged message, with the row id it was acknowledged with.
  {
    std::unordered_map<std::string, std::pair<int64_t, std::string>> stored;
    auto conn = store->reads().acquire();
    auto st = conn->prepare("SELECT platform_id, id, text FROM messages WHERE channel = ?");
    ASSERT_TRUE(st.ok()) << st.error().describe();
    st->bind(1, kChannel);
    for (;;) {
      auto row = st->step();
      ASSERT_TRUE(row.ok()) << row.error().describe();
      if (!*row) break;
      stored.emplace(st->column_text(0), std::make_pair(st->column_int64(1), st->column_text(2)));
    }
    size_t missing = 0;
    std::string listed;
    for (const auto& m : messages) {
      const auto it = stored.find(m.platform_id);
      const bool ok = it != stored.end() && it->second.first == m.row_id &&
                      it->second.second.starts_with(m.platform_id);
      if (!ok && ++missing <= kMaxListed) {
        listed += "  " + m.platform_id + " (acked as row " + std::to_string(m.row_id) + "): " +
                  (it == stored.end() ? std::string("missing")
                                      : "row " + std::to_string(it->second.first) + ", text '" +
                                            it->second.second + "'") +
                  "\n";
      }
    }
    EXPECT_EQ(missing, 0u) << "of " << messages.size() << " acknowledged messages, " << missing
                           << " are lost or wrong; the first:\n"
                           << listed;
  }

  // Every acknowledged memory, with the content it was written with.
  {
    std::unordered_map<int64_t, std::string> stored;
    auto conn = store->reads().acquire();
    auto st = conn->prepare("SELECT id, content FROM memories");
    ASSERT_TRUE(st.ok()) << st.error().describe();
    for (;;) {
      auto row = st->step();
      ASSERT_TRUE(row.ok()) << row.error().describe();
      if (!*row) break;
      stored.emplace(st->column_int64(0), st->column_text(1));
    }
    size_t missing = 0;
    std::string listed;
    for (const auto& m : memories) {
      const auto it = stored.find(m.row_id);
      const bool ok = it != stored.end() && it->second.find(m.token) != std::string::npos;
      if (!ok && ++missing <= kMaxListed) {
        listed += "  memory " + std::to_string(m.row_id) + " (" + m.token +
                  "): " + (it == stored.end() ? "missing" : "content '" + it->second + "'") + "\n";
      }
    }
    EXPECT_EQ(missing, 0u) << "of " << memories.size() << " acknowledged memories, " << missing
                           << " are lost or wrong; the first:\n"
                           << listed;
  }

  // The same through the repositories, for the last acks of this round.
  if (!last_round.messages.empty()) {
    const auto& m = last_round.messages.back();
    auto found = store->messages().find(kChannel, m.platform_id);
    ASSERT_TRUE(found.ok()) << found.error().describe();
    ASSERT_TRUE(found->has_value()) << m.platform_id;
    EXPECT_EQ((*found)->id, m.row_id);
  }
  if (!last_round.memories.empty()) {
    const auto& m = last_round.memories.back();
    auto hits = store->memories().recall(user_id, m.token);
    ASSERT_TRUE(hits.ok()) << hits.error().describe();
    ASSERT_EQ(hits->size(), 1u) << "recall of " << m.token;
    EXPECT_EQ((*hits)[0].memory->id, m.row_id);
  }

  store.reset();  // drains and closes: nothing else writes to the database now

  // A writable connection of our own: the FTS5 check is an INSERT of a command.
  auto conn = Connection::open(db);
  ASSERT_TRUE(conn.ok()) << conn.error().describe();
  const auto integrity = conn->integrity_check();
  EXPECT_TRUE(integrity.ok()) << integrity.error().describe();
  const auto fts = conn->exec("INSERT INTO memories_fts(memories_fts) VALUES('integrity-check')");
  EXPECT_TRUE(fts.ok()) << "FTS5 index out of step with memories: " << fts.error().describe();
}

TEST(CrashSafetyTest, AcknowledgedWritesSurviveSigkill) {
  const uint64_t seed = choose_seed();
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  SCOPED_TRACE("seed " + std::to_string(seed) +
               " (replay: PARLEY_CRASH_SEED=" + std::to_string(seed) + ")");
  std::printf("crash_safety_test: seed %llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  std::bernoulli_distribution early_kill(kEarlyKillShare);
  std::uniform_int_distribution<int> early_kill_ms(1, kMinKillMs - 1);
  std::uniform_int_distribution<int> kill_ms(kMinKillMs, kMaxKillMs);
  std::bernoulli_distribution keep_wal(0.5);

  TempDir dir;
  const auto db = dir / "parley.db";
  std::optional<Connection> keeper;  // declared after dir: closed before it is removed

  std::vector<AckedMessage> messages;  // over all rounds
  std::vector<AckedMemory> memories;
  std::vector<RoundStats> rounds;
  int64_t user_id = 0;
  const auto started = steady_clock::now();

  for (int round = 0; round < kRounds; ++round) {
    RoundStats stats;
    const bool early = early_kill(rng);
    stats.kill_ms = early ? early_kill_ms(rng) : kill_ms(rng);
    stats.keep_wal = keep_wal(rng);
    SCOPED_TRACE("round " + std::to_string(round) + ", kill " + std::to_string(stats.kill_ms) +
                 (early ? " ms after spawn" : " ms after ready"));

    Reports reports;
    run_child(dir, db, round, milliseconds(stats.kill_ms), !early, reports);
    stats.ready = reports.ready;
    stats.ready_ms = reports.ready_ms;
    stats.messages = reports.messages.size();
    stats.memories = reports.memories.size();
    stats.wal_bytes = file_size_or_zero(db.string() + "-wal");
    rounds.push_back(stats);
    ASSERT_FALSE(::testing::Test::HasFatalFailure()) << summary(rounds);

    messages.insert(messages.end(), reports.messages.begin(), reports.messages.end());
    memories.insert(memories.end(), reports.memories.begin(), reports.memories.end());
    if (reports.ready) user_id = reports.user_id;

    // With keep_wal, a connection stays open from before this check until the next one: the
    // check's clean close then cannot checkpoint and remove the WAL. Without, the check's
    // Store is the first connection (recovery rebuilds the WAL index) and the last.
    if (!std::filesystem::exists(db)) rounds.back().keep_wal = false;  // killed before creating it
    if (!rounds.back().keep_wal) {
      keeper.reset();
    } else if (!keeper) {
      auto k = Connection::open(db, ConnectionOptions{.mode = ConnectionOptions::Mode::read_only});
      ASSERT_TRUE(k.ok()) << k.error().describe();
      keeper = std::move(*k);
    }

    const auto check_start = steady_clock::now();
    check_database(db, messages, memories, reports, user_id);
    rounds.back().check_ms = static_cast<long>(
        std::chrono::duration_cast<milliseconds>(steady_clock::now() - check_start).count());
    ASSERT_FALSE(::testing::Test::HasFailure()) << summary(rounds);
  }
  keeper.reset();

  const auto total_ms =
      std::chrono::duration_cast<milliseconds>(steady_clock::now() - started).count();
  std::printf("crash_safety_test: %d rounds in %lld ms, %zu message and %zu memory acks\n%s",
              kRounds, static_cast<long long>(total_ms), messages.size(), memories.size(),
              summary(rounds).c_str());
  EXPECT_GT(messages.size(), 0u) << "no round acknowledged a write:\n" << summary(rounds);
  EXPECT_GT(memories.size(), 0u) << "no round acknowledged a memory:\n" << summary(rounds);
}

}  // namespace crash_safety_test
}  // namespace parley::storage
