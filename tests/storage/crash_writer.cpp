// crash_writer: the child process of crash_safety_test. Opens the store at DB_PATH and writes
// from several threads forever — messages, and every few messages an FTS-indexed memory —
// reporting each write on a pipe only after its acknowledgement (the commit), until it is
// killed with SIGKILL. It never exits cleanly: any exit is a failure.
//
// Usage: crash_writer DB_PATH FD_OR_-
//   FD_OR_-  the file descriptor to report on; "-" for stdout (which is then moved away, and
//            fd 1 pointed at stderr, so that nothing else can write into the report stream).
//
// Report protocol: newline-terminated lines, each written with a single write(2) of at most
// PIPE_BUF bytes, so that lines from different threads never interleave and a kill never
// leaves half a line behind:
//   R <pid> <conversation id> <user id>   ready: the store is open
//   A <platform_id> <row id>              a message was committed (text starts with platform_id)
//   M <row id> <token>                    a memory was committed (content contains token)
// Failures go to stderr with exit status 3 (usage: 2).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <future>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "parley/storage/store.h"

namespace {

using parley::Result;
using parley::storage::NewMemory;
using parley::storage::NewMessage;
using parley::storage::Store;
using parley::storage::StoreOptions;
using parley::storage::WriteAck;

constexpr int kThreads = 8;
constexpr size_t kInFlight = 8;  // writes each thread keeps queued before waiting on the oldest
constexpr uint64_t kMemoryEvery = 4;  // one memory per this many messages
constexpr const char* kChannel = "crash";

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "crash_writer[%d]: %s\n", static_cast<int>(getpid()), what.c_str());
  std::fflush(stderr);
  std::_Exit(3);  // not exit(): the writer threads are still running
}

// One record, one write(2): atomic on a pipe for at most PIPE_BUF bytes.
void report(int fd, const std::string& line) {
  if (line.size() > PIPE_BUF) die("report line longer than PIPE_BUF: " + line);
  ssize_t n = 0;
  do {
    n = write(fd, line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(line.size())) {
    die("report write failed: " + std::string(n < 0 ? std::strerror(errno) : "short write"));
  }
}

// A varied message length, so that rows spill over pages at different points.
std::string filler(uint64_t n) {
  static constexpr std::string_view kWords[] = {"alpha", "bravo",   "charlie", "delta",
                                                "echo",  "foxtrot", "golf",    "hotel"};
  std::string s;
  for (uint64_t i = 0; i < n % 40; ++i) {
    s += ' ';
    s += kWords[(n + i) % std::size(kWords)];
  }
  return s;
}

struct Pending {
  std::future<Result<WriteAck>> future;
  std::string key;  // the message's platform_id, or the memory's token
  bool memory = false;
};

void acknowledge(int fd, Pending& p) {
  auto ack = p.future.get();
  if (!ack.ok()) die("write of " + p.key + " failed: " + ack.error().describe());
  if (!ack->inserted) die("write of " + p.key + " was not inserted (duplicate?)");
  if (p.memory) {
    report(fd, "M " + std::to_string(ack->row_id) + " " + p.key + "\n");
  } else {
    report(fd, "A " + p.key + " " + std::to_string(ack->row_id) + "\n");
  }
}

void produce(Store& store, int fd, int64_t conversation_id, int64_t user_id,
             const std::string& prefix, int thread) {
  std::deque<Pending> in_flight;
  for (uint64_t n = 0;; ++n) {
    const std::string id = prefix + "-" + std::to_string(thread) + "-" + std::to_string(n);
    NewMessage m;
    m.conversation_id = conversation_id;
    m.channel = kChannel;
    m.platform_id = id;
    m.author = "crash-writer";
    m.text = id + filler(n);
    in_flight.push_back(Pending{store.messages().append(std::move(m)), id, false});

    if (n % kMemoryEvery == 0) {
      // Only letters and digits: one token for the FTS tokenizer.
      const std::string token = prefix + "x" + std::to_string(thread) + "x" + std::to_string(n);
      NewMemory mem;
      mem.user_id = user_id;
      mem.content = "remember " + token + filler(n + 3);
      mem.tags = "crash test";
      mem.importance = static_cast<int>(n % 10);
      in_flight.push_back(Pending{store.memories().add(std::move(mem)), token, true});
    }
    while (in_flight.size() >= kInFlight) {
      acknowledge(fd, in_flight.front());
      in_flight.pop_front();
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: crash_writer DB_PATH FD_OR_-\n");
    return 2;
  }
  int fd = -1;
  const std::string_view fd_arg = argv[2];
  if (fd_arg == "-") {
    // Keep the report stream to ourselves: anything else printing to stdout (a logger) goes to
    // stderr instead of corrupting the records.
    fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    if (fd < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) die("cannot move stdout");
  } else {
    const auto [end, ec] = std::from_chars(fd_arg.data(), fd_arg.data() + fd_arg.size(), fd);
    if (ec != std::errc() || end != fd_arg.data() + fd_arg.size() || fd < 0) {
      std::fprintf(stderr, "crash_writer: bad fd '%s'\n", argv[2]);
      return 2;
    }
  }

  auto opened = Store::open(StoreOptions{.path = argv[1]});
  if (!opened.ok()) die("cannot open the store: " + opened.error().describe());
  Store& store = **opened;
  auto conversation = store.directory().ensure_conversation(kChannel, "crash-conversation").get();
  if (!conversation.ok()) die("ensure_conversation: " + conversation.error().describe());
  auto user = store.directory().ensure_user(kChannel, "crash-user", "Crash User").get();
  if (!user.ok()) die("ensure_user: " + user.error().describe());

  // Unique across runs on the same database even if a pid is reused.
  const auto start_us = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  const std::string prefix = "p" + std::to_string(getpid()) + "s" + std::to_string(start_us);
  report(fd, "R " + std::to_string(getpid()) + " " + std::to_string(conversation->row_id) + " " +
                 std::to_string(user->row_id) + "\n");

  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back(produce, std::ref(store), fd, conversation->row_id, user->row_id,
                         std::cref(prefix), t);
  }
  for (auto& t : threads) t.join();  // never: the producers write until the process is killed
  die("producers stopped");
}
