// The mail server pair the email tests run against (support/mail_stack.h, tests/mail/): it comes
// up on free loopback ports and goes away entirely; LMTP delivery, SMTP submission through Exim
// (and its refusals), IMAP login and capabilities, a Dovecot restart, a new UIDVALIDITY.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "support/mail_stack.h"
#include "support/tcp_line_client.h"

namespace mail_stack_test {

using parley::testing::loopback_port_open;
using parley::testing::MailStack;
using parley::testing::TcpLineClient;

// Reads IMAP lines up to the tagged reply of `tag`; all of them, the tagged one last.
std::vector<std::string> imap_until(TcpLineClient& c, const std::string& tag) {
  std::vector<std::string> lines;
  do {
    lines.push_back(c.read_line());
  } while (lines.back().rfind(tag + " ", 0) != 0);
  return lines;
}

// An IMAP session logged in as `user` (the greeting and the login's OK consumed).
TcpLineClient imap_login(const MailStack& stack, const std::string& user) {
  TcpLineClient c(stack.imap_port());
  EXPECT_EQ(c.read_line().rfind("* OK", 0), 0u);
  c.send_line("a LOGIN " + user + " " + MailStack::user(user).password);
  const auto reply = imap_until(c, "a");
  EXPECT_EQ(reply.back().rfind("a OK", 0), 0u) << reply.back();
  return c;
}

// `item` of STATUS INBOX for `user` over a new session, e.g. "UIDVALIDITY" → "1796564073".
std::string inbox_status(const MailStack& stack, const std::string& user, const std::string& item) {
  auto c = imap_login(stack, user);
  c.send_line("s STATUS INBOX (" + item + ")");
  for (const auto& line : imap_until(c, "s")) {
    const size_t at = line.find("(" + item + " ");
    if (line.rfind("* STATUS", 0) == 0 && at != std::string::npos) {
      const size_t from = at + item.size() + 2;
      return line.substr(from, line.find(')', from) - from);
    }
  }
  return "";
}

int pid_in(const std::filesystem::path& pid_file) {
  std::ifstream in(pid_file);
  int pid = 0;
  in >> pid;
  return pid;
}

// Whether `pid` runs (a zombie, waiting for init to reap it, does not).
bool running(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return false;
  const size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

const std::string kNote =
    "From: Sender <sender@example.test>\n"
    "To: bot@parley.test\n"
    "Subject: a note\n"
    "Message-ID: <note-1@example.test>\n"
    "\n"
    "first line\n"
    ".a line that starts with a dot\n"
    ".\n"
    "last line\n";

// One stack for the tests that only deliver and log in, each to a user of its own (a stack costs
// some 0.4 s to start and stop); a new one for each --gtest_repeat round.
class MailStackShared : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      stack_ = std::make_unique<MailStack>();
    } catch (const std::exception& e) {
      error_ = e.what();
    }
  }
  static void TearDownTestSuite() { stack_.reset(); }
  void SetUp() override { ASSERT_NE(stack_, nullptr) << error_; }
  static MailStack& stack() { return *stack_; }

 private:
  static inline std::unique_ptr<MailStack> stack_;
  static inline std::string error_;
};

TEST(MailStack, UpAndDownLeaveNoPortOrProcess) {
  std::array<std::uint16_t, 3> ports{};
  int dovecot = 0;
  int exim = 0;
  {
    MailStack stack;
    ports = {stack.imap_port(), stack.smtp_port(), stack.lmtp_port()};
    for (auto port : ports) EXPECT_TRUE(loopback_port_open(port)) << port;
    dovecot = pid_in(stack.dir() / "run/master.pid");
    exim = pid_in(stack.dir() / "exim.pid");
    EXPECT_TRUE(running(dovecot));
    EXPECT_TRUE(running(exim));
  }
  for (auto port : ports) EXPECT_FALSE(loopback_port_open(port)) << port;
  EXPECT_FALSE(running(dovecot));
  EXPECT_FALSE(running(exim));
}

TEST_F(MailStackShared, DeliveredMessageIsInTheInbox) {
  auto& stack = MailStackShared::stack();
  stack.deliver("bot", kNote);
  const auto inbox = stack.messages("bot");
  ASSERT_EQ(inbox.size(), 1u);
  // As sent (dots and all), after the trace headers of the delivery.
  EXPECT_TRUE(inbox[0].raw.ends_with(kNote)) << inbox[0].raw;
  EXPECT_EQ(inbox[0].header("subject"), "a note");
  EXPECT_EQ(inbox[0].header("Delivered-To"), "bot@parley.test");
  EXPECT_EQ(inbox[0].body(), "first line\n.a line that starts with a dot\n.\nlast line\n");
  EXPECT_EQ(inbox[0].uid, 1u);
  EXPECT_FALSE(inbox[0].seen());
  EXPECT_THROW(stack.deliver("nobody", kNote), std::runtime_error);
}

TEST_F(MailStackShared, SubmittedMailArrivesThroughExim) {
  auto& stack = MailStackShared::stack();
  const auto bot = MailStack::bot();
  const auto alice = MailStack::alice();
  const std::string mail = "From: " + bot.address + "\r\nTo: " + alice.address +
                           "\r\nSubject: hello alice\r\n\r\nhi\r\n";
  const auto sent = stack.submit(bot.name, bot.password, bot.address, {alice.address}, mail);
  ASSERT_TRUE(sent.ok) << sent.line;
  const auto inbox = stack.wait_messages("alice", 1);
  ASSERT_EQ(inbox.size(), 1u);
  EXPECT_EQ(inbox[0].header("Subject"), "hello alice");
  EXPECT_EQ(inbox[0].header("Return-Path"), "<bot@parley.test>");
  EXPECT_EQ(inbox[0].body(), "hi\n");
}

TEST_F(MailStackShared, SubmissionsAreRefusedWithoutTheRightLoginOrToAStranger) {
  auto& stack = MailStackShared::stack();
  const auto bot = MailStack::bot();
  const std::string mail = "Subject: x\r\n\r\nx\r\n";
  const auto wrong = stack.submit(bot.name, "wrong", bot.address, {"alice@parley.test"}, mail);
  EXPECT_FALSE(wrong.ok);
  EXPECT_EQ(wrong.code, 535) << wrong.line;
  const auto anonymous = stack.submit("", "", bot.address, {"alice@parley.test"}, mail);
  EXPECT_EQ(anonymous.code, 550) << anonymous.line;
  const auto elsewhere = stack.submit(bot.name, bot.password, bot.address, {"x@example.com"}, mail);
  EXPECT_EQ(elsewhere.code, 550) << elsewhere.line;
  const auto full_login =
      stack.submit(bot.address, bot.password, bot.address, {"carol@parley.test"}, mail);
  EXPECT_TRUE(full_login.ok) << full_login.line;
  EXPECT_EQ(stack.wait_messages("carol", 1).size(), 1u);
}

TEST_F(MailStackShared, ImapLogsInAndOffersIdleUidplusMove) {
  auto& stack = MailStackShared::stack();
  auto c = imap_login(stack, "bot");
  c.send_line("b CAPABILITY");
  const auto lines = imap_until(c, "b");
  ASSERT_EQ(lines.size(), 2u);
  for (const char* cap : {" IDLE", " UIDPLUS", " MOVE"}) {
    EXPECT_NE(lines[0].find(cap), std::string::npos) << lines[0];
  }
}

TEST_F(MailStackShared, WrongImapPasswordFailsFastAndDoesNotSlowTheNextLogin) {
  auto& stack = MailStackShared::stack();
  const auto start = std::chrono::steady_clock::now();
  TcpLineClient c(stack.imap_port());
  c.read_line();
  c.send_line("a LOGIN bot wrong");
  EXPECT_EQ(imap_until(c, "a").back().rfind("a NO", 0), 0u);
  // Dovecot answers a failure on its next 0.5 s tick (2 s later by default), and without the
  // auth penalty turned off, the next login from 127.0.0.1 would wait 4 s more.
  imap_login(stack, "alice");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
}

TEST(MailStack, ImapRestartKeepsTheMail) {
  MailStack stack;
  stack.deliver("bot", kNote);
  ASSERT_EQ(inbox_status(stack, "bot", "MESSAGES"), "1");
  stack.stop_imap();
  EXPECT_FALSE(loopback_port_open(stack.imap_port()));
  EXPECT_FALSE(loopback_port_open(stack.lmtp_port()));
  // Exim takes mail meanwhile and hands it over once Dovecot is back.
  const auto alice = MailStack::alice();
  const auto sent = stack.submit(alice.name, alice.password, alice.address, {"bot@parley.test"},
                                 "Subject: while down\r\n\r\nx\r\n");
  ASSERT_TRUE(sent.ok) << sent.line;
  EXPECT_EQ(stack.messages("bot").size(), 1u);
  stack.start_imap();
  const auto inbox = stack.wait_messages("bot", 2);
  ASSERT_EQ(inbox.size(), 2u);
  EXPECT_EQ(inbox[0].header("Subject"), "a note");
  EXPECT_EQ(inbox[1].header("Subject"), "while down");
  EXPECT_EQ(inbox_status(stack, "bot", "MESSAGES"), "2");
}

TEST(MailStack, SetUidValidityChangesWhatStatusReports) {
  MailStack stack;
  stack.deliver("bot", kNote);
  const std::string before = inbox_status(stack, "bot", "UIDVALIDITY");
  ASSERT_FALSE(before.empty());
  stack.set_uidvalidity("bot", "INBOX", 4242);
  EXPECT_EQ(inbox_status(stack, "bot", "UIDVALIDITY"), "4242");
  // Also while Dovecot is down (a restart that comes back with another UIDVALIDITY).
  stack.stop_imap();
  stack.set_uidvalidity("bot", "INBOX", 4343);
  stack.start_imap();
  EXPECT_EQ(inbox_status(stack, "bot", "UIDVALIDITY"), "4343");
  EXPECT_EQ(inbox_status(stack, "bot", "MESSAGES"), "1");
}

}  // namespace mail_stack_test
