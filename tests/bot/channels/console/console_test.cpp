// ConsoleChannel against a fake Inbox: lines from a pipe, a regular file or a pseudo-terminal
// (libedit), replies and pushed messages written to a file, the outbox bracket around each
// printed reply, end of input, quit lines and stop().
#include "parley/bot/channels/console/console.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/run_parley.h"
#include "support/temp_dir.h"

namespace console_test {

using parley::bot::channels::ConsoleChannel;
using parley::bot::channels::ConsoleOptions;
using parley::bot::channels::Inbox;
using parley::bot::channels::OutboundMessage;
using parley::bot::pipeline::InboundMessage;
using parley::bot::pipeline::TurnResult;
using parley::testing::slurp;
using parley::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace asio = parley::net::asio;
using namespace std::chrono_literals;

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 5s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// Records every call, in order. sending() and sent() also note whether the reply was already
// in the output file at that moment: it must not be at sending(), and must be at sent().
class FakeInbox final : public Inbox {
 public:
  using Answer = std::function<TurnResult(const InboundMessage&)>;

  FakeInbox(std::filesystem::path output, Answer answer)
      : output_(std::move(output)), answer_(std::move(answer)) {}

  asio::awaitable<TurnResult> deliver(const InboundMessage& message) override {
    record("deliver:" + message.text, message);
    if (message.text.rfind("slow", 0) == 0) {
      auto executor = co_await asio::this_coro::executor;
      asio::steady_timer timer(executor, 300ms);
      co_await timer.async_wait(asio::use_awaitable);
    }
    TurnResult r = answer_(message);
    {
      const std::lock_guard lock(mu_);
      last_reply_[r.outbox_id] = r.reply;
    }
    record("answered:" + message.text);
    co_return r;
  }

  asio::awaitable<void> sending(int64_t outbox_id) override {
    record("sending:" + std::to_string(outbox_id) +
           (printed(outbox_id) ? ":printed" : ":not-printed"));
    co_return;
  }

  void sent(int64_t outbox_id) override {
    record("sent:" + std::to_string(outbox_id) +
           (printed(outbox_id) ? ":printed" : ":not-printed"));
  }

  std::vector<std::string> calls() const {
    const std::lock_guard lock(mu_);
    return calls_;
  }
  std::vector<InboundMessage> messages() const {
    const std::lock_guard lock(mu_);
    return messages_;
  }
  std::vector<std::string> texts() const {
    std::vector<std::string> out;
    for (const auto& m : messages()) out.push_back(m.text);
    return out;
  }

 private:
  bool printed(int64_t outbox_id) {
    std::string reply;
    {
      const std::lock_guard lock(mu_);
      reply = last_reply_[outbox_id];
    }
    return slurp(output_).find(reply + "\n") != std::string::npos;
  }
  void record(std::string call, const InboundMessage& m) {
    const std::lock_guard lock(mu_);
    calls_.push_back(std::move(call));
    messages_.push_back(m);
  }
  void record(std::string call) {
    const std::lock_guard lock(mu_);
    calls_.push_back(std::move(call));
  }

  std::filesystem::path output_;
  Answer answer_;
  mutable std::mutex mu_;
  std::vector<std::string> calls_;
  std::vector<InboundMessage> messages_;
  std::map<int64_t, std::string> last_reply_;
};

TurnResult reply_to(const InboundMessage& m, int64_t outbox_id) {
  TurnResult r;
  r.reply = "re: " + m.text;
  r.outbox_id = outbox_id;
  return r;
}

// A pipe whose write end the test holds.
struct Pipe {
  Pipe() { EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0); }
  ~Pipe() {
    close_write();
    if (fds[0] >= 0) ::close(fds[0]);
  }
  void write(const std::string& s) const {
    EXPECT_EQ(::write(fds[1], s.data(), s.size()), static_cast<ssize_t>(s.size()));
  }
  void close_write() {
    if (fds[1] >= 0) ::close(fds[1]);
    fds[1] = -1;
  }
  int read_fd() const { return fds[0]; }
  int fds[2] = {-1, -1};
};

class ConsoleTest : public ::testing::Test {
 protected:
  ConsoleTest() : work_(asio::make_work_guard(ioc_)), io_([this] { ioc_.run(); }) {
    out_fd_ = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT_GE(out_fd_, 0);
  }
  ~ConsoleTest() override {
    channel_.reset();
    work_.reset();
    io_.join();
    ::close(out_fd_);
  }

  // A channel reading `input_fd`, writing the output file; on_eof counted.
  ConsoleChannel& open(int input_fd, std::vector<std::string> quit_lines = {},
                       std::filesystem::path files_dir = {}) {
    ConsoleOptions o;
    o.files_dir = std::move(files_dir);
    o.input_fd = input_fd;
    o.output_fd = out_fd_;
    o.user = "alice";
    o.user_name = "Alice";
    o.conversation = "conv-1";
    o.line_editing = false;
    o.quit_lines = std::move(quit_lines);
    o.on_eof = [this] { eofs_.fetch_add(1); };
    channel_ = std::make_unique<ConsoleChannel>(ioc_.get_executor(), o);
    return *channel_;
  }

  std::string output() const { return slurp(out_path_); }
  bool finished() const { return eofs_.load() > 0 && channel_->active() == 0; }

  TempDir dir_;
  std::filesystem::path out_path_ = dir_ / "out.txt";
  int out_fd_ = -1;
  std::atomic<int> eofs_{0};
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread io_;
  std::unique_ptr<ConsoleChannel> channel_;
};

TEST_F(ConsoleTest, DeliversLinesInOrderAndPrintsEachReplyBetweenSendingAndSent) {
  std::atomic<int64_t> next{1};
  FakeInbox inbox(out_path_, [&](const InboundMessage& m) { return reply_to(m, next++); });
  Pipe in;
  auto& console = open(in.read_fd());
  EXPECT_EQ(console.name(), "console");
  EXPECT_TRUE(console.can_push());
  ASSERT_TRUE(console.start(inbox).ok());
  in.write("hello\n\n   \nsecond line\r\n");
  in.write("third\n");
  in.close_write();
  ASSERT_TRUE(wait_until([&] { return finished(); })) << output();

  EXPECT_THAT(inbox.texts(), ElementsAre("hello", "second line", "third"));
  for (const auto& m : inbox.messages()) {
    EXPECT_EQ(m.channel, "console");
    EXPECT_FALSE(m.platform_id.has_value());
    EXPECT_EQ(m.conversation, "conv-1");
    EXPECT_EQ(m.author, "alice");
    EXPECT_EQ(m.author_name, "Alice");
  }
  EXPECT_EQ(output(), "re: hello\nre: second line\nre: third\n");
  const auto calls = inbox.calls();
  for (int id = 1; id <= 3; ++id) {
    const auto sending =
        std::find(calls.begin(), calls.end(), "sending:" + std::to_string(id) + ":not-printed");
    const auto sent =
        std::find(calls.begin(), calls.end(), "sent:" + std::to_string(id) + ":printed");
    ASSERT_NE(sending, calls.end()) << id << ": " << ::testing::PrintToString(calls);
    ASSERT_NE(sent, calls.end()) << id << ": " << ::testing::PrintToString(calls);
    EXPECT_LT(sending, sent);
  }
  EXPECT_EQ(eofs_.load(), 1);
}

TEST_F(ConsoleTest, ALineTypedWhileATurnRunsIsDeliveredAtOnce) {
  std::atomic<int64_t> next{1};
  FakeInbox inbox(out_path_, [&](const InboundMessage& m) { return reply_to(m, next++); });
  Pipe in;
  ASSERT_TRUE(open(in.read_fd()).start(inbox).ok());
  in.write("slow one\n");
  ASSERT_TRUE(wait_until([&] { return !inbox.calls().empty(); }));
  in.write("quick one\n");
  in.close_write();
  ASSERT_TRUE(wait_until([&] { return finished(); }));
  const auto calls = inbox.calls();
  const auto quick = std::find(calls.begin(), calls.end(), "deliver:quick one");
  const auto slow_done = std::find(calls.begin(), calls.end(), "answered:slow one");
  ASSERT_NE(quick, calls.end());
  ASSERT_NE(slow_done, calls.end());
  EXPECT_LT(quick, slow_done) << ::testing::PrintToString(calls);
  EXPECT_THAT(output(), HasSubstr("re: slow one\n"));
  EXPECT_THAT(output(), HasSubstr("re: quick one\n"));
}

TEST_F(ConsoleTest, OnlyThePrimaryResultOfAMergedBurstIsPrinted) {
  FakeInbox inbox(out_path_, [](const InboundMessage& m) {
    TurnResult r;
    r.reply = "one answer to both";
    r.outbox_id = 5;
    r.primary = m.text == "second";
    return r;
  });
  Pipe in;
  ASSERT_TRUE(open(in.read_fd()).start(inbox).ok());
  in.write("first\nsecond\n");
  in.close_write();
  ASSERT_TRUE(wait_until([&] { return finished(); }));
  EXPECT_EQ(output(), "one answer to both\n");
  const auto calls = inbox.calls();
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "sending:5:not-printed"), 1);
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "sent:5:printed"), 1);
}

TEST_F(ConsoleTest, ARefusalIsPrintedOnceAndNeverSentThroughTheOutbox) {
  std::atomic<int> seen{0};
  FakeInbox inbox(out_path_, [&](const InboundMessage&) {
    TurnResult r;
    r.refused = true;
    r.reply = seen++ == 0 ? "You are not on the allowlist." : "";
    return r;
  });
  Pipe in;
  ASSERT_TRUE(open(in.read_fd()).start(inbox).ok());
  in.write("hi\nhello?\nanyone\n");
  in.close_write();
  ASSERT_TRUE(wait_until([&] { return finished(); }));
  EXPECT_EQ(inbox.texts().size(), 3u);
  EXPECT_EQ(output(), "You are not on the allowlist.\n");
  for (const auto& c : inbox.calls()) EXPECT_EQ(c.rfind("sen", 0), std::string::npos) << c;
}

TEST_F(ConsoleTest, AStorageErrorIsPrintedAsAClearErrorLine) {
  FakeInbox inbox(out_path_, [](const InboundMessage&) {
    TurnResult r;
    r.error = parley::Error{parley::ErrorCode::unavailable, "database is locked"};
    return r;
  });
  Pipe in;
  ASSERT_TRUE(open(in.read_fd()).start(inbox).ok());
  in.write("hello\n");
  in.close_write();
  ASSERT_TRUE(wait_until([&] { return finished(); }));
  EXPECT_THAT(output(), HasSubstr("parley: "));
  EXPECT_THAT(output(), HasSubstr("database is locked"));
  EXPECT_THAT(output(), HasSubstr("not taken"));
  for (const auto& c : inbox.calls()) EXPECT_EQ(c.rfind("sen", 0), std::string::npos) << c;
}

TEST_F(ConsoleTest, SendPrintsAPushedMessageAndReportsDone) {
  FakeInbox inbox(out_path_, [](const InboundMessage& m) { return reply_to(m, 1); });
  Pipe in;
  auto& console = open(in.read_fd());
  ASSERT_TRUE(console.start(inbox).ok());
  std::promise<parley::Status> done;
  console.send(OutboundMessage{42, "conv-1", "Reminder: stretch your legs", {}},
               [&done](parley::Status st) { done.set_value(std::move(st)); });
  auto f = done.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(f.get().ok());
  EXPECT_EQ(output(), "Reminder: stretch your legs\n");
  EXPECT_TRUE(inbox.calls().empty());
}

// Files sent with a message are written under files_dir (owner-only), each named by its entry,
// and a line says where; without a folder the line says the file was not saved.
TEST_F(ConsoleTest, FilesOfAMessageAreWrittenOutAndTheirPathsPrinted) {
  FakeInbox inbox(out_path_, [](const InboundMessage& m) { return reply_to(m, 1); });
  Pipe in;
  const auto files = dir_ / "files";
  auto& console = open(in.read_fd(), {}, files);
  ASSERT_TRUE(console.start(inbox).ok());
  std::promise<parley::Status> done;
  OutboundMessage m{42, "conv-1", "Your calendar", {}};
  m.files.push_back(
      parley::storage::OutboxFile{"events.ics", "text/calendar", "BEGIN:VCALENDAR", ""});
  m.files.push_back(
      parley::storage::OutboxFile{"chart.png", "image/png", std::string("\x89PNG\0\x01", 6), ""});
  console.send(m, [&done](parley::Status st) { done.set_value(std::move(st)); });
  auto f = done.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(f.get().ok());
  const auto ics = files / "42-events.ics";
  const auto png = files / "42-chart.png";
  EXPECT_EQ(output(), fmt::format("Your calendar\n📎 events.ics: {} (15 bytes)\n📎 chart.png: {} "
                                  "(6 bytes)\n",
                                  ics.string(), png.string()));
  EXPECT_EQ(slurp(ics), "BEGIN:VCALENDAR");
  EXPECT_EQ(slurp(png), std::string("\x89PNG\0\x01", 6));
  EXPECT_EQ(std::filesystem::status(png).permissions(),
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_EQ(std::filesystem::status(files).permissions(), std::filesystem::perms::owner_all);
}

TEST_F(ConsoleTest, WithoutAFolderForFilesTheLineSaysTheFileWasNotSaved) {
  FakeInbox inbox(out_path_, [](const InboundMessage& m) { return reply_to(m, 1); });
  Pipe in;
  auto& console = open(in.read_fd());
  ASSERT_TRUE(console.start(inbox).ok());
  std::promise<parley::Status> done;
  OutboundMessage m{7, "conv-1", "Here", {}};
  m.files.push_back(parley::storage::OutboxFile{"a.txt", "text/plain", "hello", ""});
  console.send(m, [&done](parley::Status st) { done.set_value(std::move(st)); });
  auto f = done.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(output(), "Here\n📎 a.txt (5 bytes) was not saved: no folder for files is set\n");
}

TEST_F(ConsoleTest, EndOfInputCallsOnEofOnce) {
  FakeInbox inbox(out_path_, [](const InboundMessage& m) { return reply_to(m, 1); });
  Pipe in;
  ASSERT_TRUE(open(in.read_fd()).start(inbox).ok());
  in.close_write();
  ASSERT_TRUE(wait_until([&] { return eofs_.load() > 0; }));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(eofs_.load(), 1);
  EXPECT_TRUE(inbox.calls().empty());
  EXPECT_EQ(output(), "");
}

TEST_F(ConsoleTest, AQuitLineEndsTheInputAndIsNotDelivered) {
  FakeInbox inbox(out_path_, [](const InboundMessage& m) { return reply_to(m, 1); });
  Pipe in;
  ASSERT_TRUE(open(in.read_fd(), {"/quit", "/exit"}).start(inbox).ok());
  in.write("before\n  /quit \nafter\n");
  ASSERT_TRUE(wait_until([&] { return finished(); }));
  std::this_thread::sleep_for(50ms);
  EXPECT_THAT(inbox.texts(), ElementsAre("before"));
  EXPECT_EQ(eofs_.load(), 1);
}

TEST_F(ConsoleTest, StopWhileIdleReturnsAtOnceAndNothingFiresAfter) {
  FakeInbox inbox(out_path_, [](const InboundMessage& m) { return reply_to(m, 1); });
  Pipe in;
  auto& console = open(in.read_fd());
  ASSERT_TRUE(console.start(inbox).ok());
  std::this_thread::sleep_for(20ms);  // the reader is waiting
  const auto t0 = std::chrono::steady_clock::now();
  console.stop();
  console.stop();  // idempotent
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 50ms);
  in.write("too late\n");
  in.close_write();
  std::this_thread::sleep_for(150ms);
  EXPECT_TRUE(inbox.calls().empty());
  EXPECT_EQ(eofs_.load(), 0);
  EXPECT_EQ(console.active(), 0u);
  EXPECT_EQ(output(), "");
}

TEST_F(ConsoleTest, ALastLineWithoutNewlineIsDelivered) {
  std::atomic<int64_t> next{1};
  FakeInbox inbox(out_path_, [&](const InboundMessage& m) { return reply_to(m, next++); });
  Pipe in;
  ASSERT_TRUE(open(in.read_fd()).start(inbox).ok());
  in.write("one\ntwo");
  in.close_write();
  ASSERT_TRUE(wait_until([&] { return finished(); }));
  EXPECT_THAT(inbox.texts(), ElementsAre("one", "two"));
  EXPECT_EQ(output(), "re: one\nre: two\n");
}

TEST_F(ConsoleTest, ARegularFileIsReadToTheEnd) {
  const auto path = dir_ / "input.txt";
  std::string big(40000, 'x');  // more than one read chunk
  parley::testing::write_file(path, "first\n" + big + "\nlast");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::atomic<int64_t> next{1};
  FakeInbox inbox(out_path_, [&](const InboundMessage& m) { return reply_to(m, next++); });
  ASSERT_TRUE(open(fd).start(inbox).ok());
  ASSERT_TRUE(wait_until([&] { return finished(); }));
  ::close(fd);
  EXPECT_THAT(inbox.texts(), ElementsAre("first", big, "last"));
  EXPECT_EQ(eofs_.load(), 1);
}

TEST_F(ConsoleTest, DevNullIsAnEmptyInput) {
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  FakeInbox inbox(out_path_, [](const InboundMessage& m) { return reply_to(m, 1); });
  ASSERT_TRUE(open(fd).start(inbox).ok());
  ASSERT_TRUE(wait_until([&] { return eofs_.load() > 0; }));
  ::close(fd);
  EXPECT_TRUE(inbox.calls().empty());
}

// A pseudo-terminal: libedit reads it (raw mode, its own echo and prompt).
class Pty {
 public:
  Pty() {
    master_ = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    EXPECT_GE(master_, 0);
    EXPECT_EQ(::grantpt(master_), 0);
    EXPECT_EQ(::unlockpt(master_), 0);
    slave_ = ::open(::ptsname(master_), O_RDWR | O_NOCTTY | O_CLOEXEC);
    EXPECT_GE(slave_, 0);
  }
  ~Pty() {
    ::close(slave_);
    ::close(master_);
  }
  int slave() const { return slave_; }
  void type(const std::string& keys) const {
    EXPECT_EQ(::write(master_, keys.data(), keys.size()), static_cast<ssize_t>(keys.size()));
  }
  // Everything the terminal showed so far (reads what is there, waiting up to `wait`).
  std::string screen(std::chrono::milliseconds wait = 100ms) {
    pollfd p{master_, POLLIN, 0};
    char buf[4096];
    while (::poll(&p, 1, static_cast<int>(wait.count())) > 0) {
      const ssize_t n = ::read(master_, buf, sizeof buf);
      if (n <= 0) break;
      shown_.append(buf, static_cast<size_t>(n));
    }
    return shown_;
  }

 private:
  int master_ = -1;
  int slave_ = -1;
  std::string shown_;
};

TEST_F(ConsoleTest, OnATerminalLibeditReadsLinesKeepsHistoryAndRedrawsThePrompt) {
  ::setenv("TERM", "xterm", 1);  // NOLINT(concurrency-mt-unsafe): before any thread reads it
  Pty pty;
  const auto history = dir_ / "history";
  std::atomic<int64_t> next{1};
  FakeInbox inbox(out_path_, [&](const InboundMessage& m) { return reply_to(m, next++); });
  ConsoleOptions o;
  o.input_fd = pty.slave();
  o.output_fd = pty.slave();
  o.prompt = "you> ";
  o.history_file = history;
  o.on_eof = [this] { eofs_.fetch_add(1); };
  ConsoleChannel console(ioc_.get_executor(), o);
  ASSERT_TRUE(console.start(inbox).ok());
  EXPECT_TRUE(console.line_editing());

  // libedit is process-global: a second line-editing console is refused.
  ConsoleChannel second(ioc_.get_executor(), o);
  const auto refused = second.start(inbox);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, parley::ErrorCode::already_exists);

  EXPECT_THAT(pty.screen(), HasSubstr("you> "));
  pty.type("helo");
  pty.type("\x7f");  // backspace: edited before it is sent
  pty.type("lo there\r");
  ASSERT_TRUE(wait_until([&] { return inbox.texts().size() == 1; }));
  EXPECT_EQ(inbox.texts()[0], "hello there");
  ASSERT_TRUE(
      wait_until([&] { return pty.screen(10ms).find("re: hello there") != std::string::npos; }));

  // A pushed message while a line is being typed: printed, and the typed text comes back.
  pty.type("half");
  (void)pty.screen();
  std::promise<parley::Status> done;
  console.send(OutboundMessage{9, "conv-1", "Reminder: tea", {}},
               [&done](parley::Status st) { done.set_value(std::move(st)); });
  ASSERT_EQ(done.get_future().wait_for(5s), std::future_status::ready);
  const std::string after = pty.screen();
  const auto reminder = after.rfind("Reminder: tea");
  ASSERT_NE(reminder, std::string::npos) << after;
  EXPECT_NE(after.find("you> half", reminder), std::string::npos) << after;
  pty.type(" done\r");
  ASSERT_TRUE(wait_until([&] { return inbox.texts().size() == 2; }));
  EXPECT_EQ(inbox.texts()[1], "half done");

  pty.type("\x04");  // Ctrl-D on an empty line
  ASSERT_TRUE(wait_until([&] { return eofs_.load() == 1 && console.active() == 0; }));
  EXPECT_FALSE(console.line_editing());
  const std::string saved = slurp(history);
  EXPECT_THAT(saved, HasSubstr("hello"));
  EXPECT_THAT(saved, HasSubstr("half"));

  // Once the first is gone, another may edit lines (and reads the history back).
  ConsoleChannel third(ioc_.get_executor(), o);
  ASSERT_TRUE(third.start(inbox).ok());
  EXPECT_TRUE(third.line_editing());
  third.stop();
  ASSERT_TRUE(wait_until([&] { return !third.line_editing(); }));
}

}  // namespace console_test
