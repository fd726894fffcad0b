// The email channel through the real `parley run`, against a real Dovecot (IMAP, LMTP) and Exim
// (SMTP with AUTH) on 127.0.0.1 (tests/mail/, support/mail_stack.h) and the fake LLM: a question
// answered in the sender's mailbox and threaded, the thread's history kept, automatic mail never
// answered, strangers told once, and nothing lost or doubled across restarts of parley and of
// the IMAP server.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "fakes/fake_llm.h"
#include "parley/base/base64.h"
#include "parley/storage/sqlite.h"
#include "served_bot.h"
#include "support/mail_stack.h"
#include "support/run_parley.h"
#include "support/temp_dir.h"

namespace email_test {

using parley::fakes::FakeLlmServer;
using parley::fakes::FakeReply;
using parley::testing::MailMessage;
using parley::testing::MailStack;
using parley::testing::ServedBot;
using parley::testing::TempDir;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

// The last user message the model was asked about, and every user message it saw.
std::string email_last_user_text(const parley::fakes::RecordedRequest& r) {
  std::string last;
  for (const auto& m : r.json["messages"]) {
    if (m.value("role", "") == "user" && m["content"].is_string()) last = m["content"];
  }
  return last;
}

// A mail from `from` to the bot.
std::string mail(const std::string& from, const std::string& subject, const std::string& body,
                 const std::string& id, const std::string& extra_headers = "") {
  return "From: " + from + "\nTo: bot@parley.test\nSubject: " + subject +
         "\nDate: Sun, 06 Dec 2026 12:00:00 +0000\nMessage-ID: <" + id + ">\n" + extra_headers +
         "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n" + body + "\n";
}

struct EmailBed {
  EmailBed() {
    llm.set_handler([](const parley::fakes::RecordedRequest& r) -> std::optional<FakeReply> {
      return FakeReply::text("re: " + email_last_user_text(r));
    });
  }
  std::unique_ptr<ServedBot> start(const std::string& yaml = "") {
    // These tests count the model's calls: no memory extraction (a stop runs pending ones;
    // MemoryExtractorTest tests it).
    std::ofstream(dir / "parley.yaml") << yaml << "\nmemory:\n  extraction:\n    enabled: false\n";
    const std::string global = "--config parley.yaml";
    const std::string env =
        "PARLEY_IMAP_URL=imap://bot@127.0.0.1:" + std::to_string(mail.imap_port()) +
        "/INBOX PARLEY_IMAP_PASSWORD=botpass PARLEY_SMTP_URL=smtp://bot@127.0.0.1:" +
        std::to_string(mail.smtp_port()) +
        " PARLEY_SMTP_PASSWORD=botpass PARLEY_EMAIL_FROM=bot@parley.test";
    auto bot =
        std::make_unique<ServedBot>(dir.path(), llm.base_url(), "--console off", global, env);
    // The first start takes the mailbox as it is (nothing there is answered): mail is new once
    // its cursor is in the database. Later starts catch up from the cursor.
    EXPECT_TRUE(wait_cursor()) << "no email cursor after 15 s";
    return bot;
  }
  bool wait_cursor() {
    for (int i = 0; i < 300; ++i) {
      auto c = parley::storage::Connection::open(
          dir / "data" / "parley.db",
          parley::storage::ConnectionOptions{
              .mode = parley::storage::ConnectionOptions::Mode::read_only});
      if (c.ok()) {
        auto st = c->prepare(
            "SELECT 1 FROM channel_state WHERE channel = 'email' AND key = 'cursor:INBOX'");
        if (st.ok()) {
          auto row = st->step();
          if (row.ok() && *row) return true;
        }
      }
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  std::vector<MailMessage> replies(size_t n, std::chrono::milliseconds t = 20s) {
    return mail.wait_messages("alice", n, t);
  }

  // On a failure, the servers' logs say where the mail went.
  ~EmailBed() {
    if (!::testing::Test::HasFailure()) return;
    for (const char* log : {"exim-mainlog", "exim-paniclog", "dovecot.log"}) {
      std::ifstream in(mail.dir() / log);
      std::stringstream text;
      text << in.rdbuf();
      std::cerr << "--- " << log << " ---\n" << text.str().substr(0, 20'000) << "\n";
    }
  }

  TempDir dir;
  FakeLlmServer llm;
  MailStack mail;
};

TEST(Email, AQuestionIsAnsweredInTheSendersMailboxInTheSameThreadWithItsHistory) {
  EmailBed bed;
  auto bot = bed.start();
  bed.mail.deliver("bot", mail("Alice <alice@parley.test>", "Lunch?", "Where shall we eat today?",
                               "q1@parley.test"));
  auto got = bed.replies(1);
  ASSERT_EQ(got.size(), 1u);
  const MailMessage& reply = got[0];
  EXPECT_EQ(reply.header("Subject"), "Re: Lunch?");
  EXPECT_EQ(reply.header("In-Reply-To"), "<q1@parley.test>");
  EXPECT_THAT(reply.header("References"), HasSubstr("<q1@parley.test>"));
  EXPECT_EQ(reply.header("Auto-Submitted"), "auto-replied");
  EXPECT_THAT(reply.header("From"), HasSubstr("bot@parley.test"));
  const std::string reply_id = reply.header("Message-ID");
  ASSERT_FALSE(reply_id.empty());
  EXPECT_THAT(reply.raw, HasSubstr("Where shall we eat today?"));
  // The question is marked read once taken in.
  ASSERT_TRUE(bed.mail.wait_messages("bot", 1).at(0).seen() || [&] {
    for (int i = 0; i < 100 && !bed.mail.messages("bot").at(0).seen(); ++i) {
      std::this_thread::sleep_for(50ms);
    }
    return bed.mail.messages("bot").at(0).seen();
  }());

  // Alice answers in the thread: the model sees the first question too.
  bed.mail.deliver(
      "bot",
      mail("Alice <alice@parley.test>", "Re: Lunch?", "And tomorrow?", "q2@parley.test",
           "In-Reply-To: " + reply_id + "\nReferences: <q1@parley.test> " + reply_id + "\n"));
  got = bed.replies(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].header("Subject"), "Re: Lunch?") << "never Re: Re:";
  EXPECT_EQ(got[1].header("In-Reply-To"), "<q2@parley.test>");
  EXPECT_THAT(got[1].header("References"), HasSubstr("<q1@parley.test>"));
  ASSERT_EQ(bed.llm.request_count(), 2u);
  EXPECT_THAT(bed.llm.requests().at(1).json.dump(), HasSubstr("Where shall we eat today?"))
      << "the thread's history";
  EXPECT_EQ(bot->stop(), 0);
}

TEST(Email, AutomaticRepliesBouncesAndListMailAreNeverAnswered) {
  EmailBed bed;
  auto bot = bed.start();
  bed.mail.deliver("bot", mail("Alice <alice@parley.test>", "Out of office", "I am away.",
                               "ooo@parley.test", "Auto-Submitted: auto-replied\n"));
  bed.mail.deliver("bot", mail("Alice <alice@parley.test>", "Automatic reply: hi", "Away.",
                               "exch@parley.test", "X-Auto-Response-Suppress: All\n"));
  bed.mail.deliver("bot",
                   "From: Mail Delivery System <MAILER-DAEMON@parley.test>\nTo: bot@parley.test\n"
                   "Subject: Undelivered Mail\nMessage-ID: <dsn@parley.test>\nMIME-Version: 1.0\n"
                   "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
                   "--b\nContent-Type: text/plain\n\nIt bounced.\n--b\n"
                   "Content-Type: message/delivery-status\n\nStatus: 5.1.1\n--b--\n",
                   "");
  bed.mail.deliver("bot", mail("List <list@parley.test>", "[list] news", "Hello all.",
                               "list@parley.test", "List-Id: <news.parley.test>\n"));
  bed.mail.deliver("bot", mail("Alice <alice@parley.test>", "A real question", "Are you there?",
                               "real@parley.test"));
  auto got = bed.replies(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].header("In-Reply-To"), "<real@parley.test>");
  EXPECT_TRUE(bed.mail.wait_messages("alice", 2, 1500ms).size() == 1) << "nothing else answered";
  EXPECT_EQ(bed.llm.request_count(), 1u);
  EXPECT_EQ(bot->stop(), 0);
}

TEST(Email, AStrangerToAPrivateBotIsToldOnceADay) {
  EmailBed bed;
  auto bot = bed.start("channels:\n  email:\n    allow: [alice@parley.test]\n");
  bed.mail.deliver("bot",
                   mail("Carol <carol@parley.test>", "Hi", "Who are you?", "c1@parley.test"));
  auto told = bed.mail.wait_messages("carol", 1, 20s);
  ASSERT_EQ(told.size(), 1u);
  EXPECT_THAT(told[0].raw, HasSubstr("only notice you will get today"));
  EXPECT_EQ(told[0].header("Auto-Submitted"), "auto-replied");
  bed.mail.deliver("bot",
                   mail("Carol <carol@parley.test>", "Hi again", "Hello?", "c2@parley.test"));
  bed.mail.deliver("bot", mail("Alice <alice@parley.test>", "Hi", "Hello!", "a1@parley.test"));
  ASSERT_EQ(bed.replies(1).size(), 1u) << "Alice is answered";
  EXPECT_EQ(bed.mail.wait_messages("carol", 2, 1500ms).size(), 1u) << "told once, not twice";
  EXPECT_EQ(bed.llm.request_count(), 1u) << "a stranger's mail never reaches the model";
  EXPECT_EQ(bot->stop(), 0);
}

TEST(Email, MailThatArrivesWhileParleyIsDownIsAnsweredOnceAfterTheRestart) {
  EmailBed bed;
  {
    auto bot = bed.start();
    bed.mail.deliver("bot", mail("Alice <alice@parley.test>", "One", "First.", "m1@parley.test"));
    ASSERT_EQ(bed.replies(1).size(), 1u);
    EXPECT_EQ(bot->stop(), 0);
  }
  bed.mail.deliver("bot", mail("Alice <alice@parley.test>", "Two", "Second.", "m2@parley.test"));
  auto bot = bed.start();
  auto got = bed.replies(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].header("In-Reply-To"), "<m2@parley.test>");
  EXPECT_EQ(bed.mail.wait_messages("alice", 3, 1500ms).size(), 2u) << "the first not again";
  EXPECT_EQ(bed.llm.request_count(), 2u);
  EXPECT_EQ(bot->stop(), 0);
}

TEST(Email, TheImapServerRestartedWhileParleyRunsLosesAndDoublesNothing) {
  EmailBed bed;
  auto bot = bed.start();
  bed.mail.deliver("bot", mail("Alice <alice@parley.test>", "Before", "Before.", "b1@parley.test"));
  ASSERT_EQ(bed.replies(1).size(), 1u);
  bed.mail.stop_imap();
  // Mail submitted meanwhile waits in Exim's queue, handed over when Dovecot is back.
  const auto submitted =
      bed.mail.submit("alice", "alicepass", "alice@parley.test", {"bot@parley.test"},
                      mail("Alice <alice@parley.test>", "During", "During.", "d1@parley.test"));
  ASSERT_TRUE(submitted.ok) << submitted.line;
  bed.mail.start_imap();
  auto got = bed.replies(2, 30s);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].header("In-Reply-To"), "<d1@parley.test>");
  EXPECT_EQ(bed.mail.wait_messages("alice", 3, 1500ms).size(), 2u);
  EXPECT_EQ(bed.llm.request_count(), 2u);
  EXPECT_EQ(bot->stop(), 0);
}

TEST(Email, AUidvalidityChangeRaisesAnAlertAndAnswersNoBacklog) {
  EmailBed bed;
  {
    auto bot = bed.start();
    bed.mail.deliver("bot", mail("Alice <alice@parley.test>", "One", "First.", "u1@parley.test"));
    ASSERT_EQ(bed.replies(1).size(), 1u);
    EXPECT_EQ(bot->stop(), 0);
  }
  bed.mail.set_uidvalidity("bot", "INBOX", 4242);
  auto bot = bed.start();
  EXPECT_EQ(bed.mail.wait_messages("alice", 2, 2s).size(), 1u) << "the old mail not answered again";
  bed.mail.deliver("bot", mail("Alice <alice@parley.test>", "Two", "Second.", "u2@parley.test"));
  ASSERT_EQ(bed.replies(2).size(), 2u) << "new mail still answered";
  EXPECT_EQ(bed.llm.request_count(), 2u);
  EXPECT_EQ(bot->stop(), 0);
}

TEST(Email, EncodedHtmlOnlyAndAttachedMailReachesTheModelAsPlainText) {
  EmailBed bed;
  auto bot = bed.start();
  // Quoted-printable ISO-8859-1 with an RFC 2047 subject, and a quoted history to leave out.
  bed.mail.deliver("bot",
                   "From: =?ISO-8859-1?Q?Ren=E9e?= <alice@parley.test>\nTo: bot@parley.test\n"
                   "Subject: =?ISO-8859-1?Q?Caf=E9_ce_soir=3F?=\nMessage-ID: <qp@parley.test>\n"
                   "MIME-Version: 1.0\nContent-Type: text/plain; charset=ISO-8859-1\n"
                   "Content-Transfer-Encoding: quoted-printable\n\n"
                   "On se retrouve au caf=E9 =E0 huit heures?\n\n"
                   "On Sat, Dec 5, 2026 at 9:00 PM Bot <bot@parley.test> wrote:\n"
                   "> an old answer that must not reach the model\n");
  ASSERT_EQ(bed.replies(1).size(), 1u);
  const std::string first = bed.llm.requests().at(0).json.dump();
  EXPECT_THAT(first, HasSubstr("au café à huit heures?"));
  EXPECT_THAT(first, HasSubstr("Café ce soir?")) << "the decoded subject";
  EXPECT_EQ(first.find("an old answer"), std::string::npos) << "quoted history stripped";
  // "Re: Café ce soir?", RFC 2047-encoded as UTF-8 ("Q2Fmw6k=" is "Café" in base64).
  EXPECT_EQ(bed.replies(1).at(0).header("Subject"), "Re: =?UTF-8?B?Q2Fmw6k=?= ce soir?");

  // HTML only, with an attachment: text reduced from the HTML, the file listed, never opened.
  bed.mail.deliver(
      "bot",
      "From: Alice <alice@parley.test>\nTo: bot@parley.test\nSubject: Report\n"
      "Message-ID: <html@parley.test>\nMIME-Version: 1.0\n"
      "Content-Type: multipart/mixed; boundary=outer\n\n--outer\n"
      "Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
      "PGh0bWw+PGJvZHk+PHA+UGxlYXNlIHJlYWQgdGhlIDxiPnJlcG9ydDwvYj4uPC9wPjwvYm9keT48L2h0bWw+\n"
      "--outer\nContent-Type: application/pdf\nContent-Disposition: attachment; "
      "filename=\"q3.pdf\"\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--outer--\n");
  ASSERT_EQ(bed.replies(2).size(), 2u);
  const std::string second = bed.llm.requests().at(1).json.dump();
  EXPECT_THAT(second, HasSubstr("Please read the report."));
  EXPECT_THAT(second, HasSubstr("q3.pdf (application/pdf, 9 bytes)"));
  EXPECT_EQ(second.find("<b>"), std::string::npos);

  // Base64 UTF-8 text/plain.
  bed.mail.deliver("bot",
                   "From: Alice <alice@parley.test>\nTo: bot@parley.test\nSubject: Hallo\n"
                   "Message-ID: <b64@parley.test>\nMIME-Version: 1.0\n"
                   "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
                   "R3LDvMOfZSBhdXMgS8O2bG4g4oCUIHVuZCBhdXMg5p2x5LqsIQo=\n");
  ASSERT_EQ(bed.replies(3).size(), 3u);
  EXPECT_THAT(bed.llm.requests().at(2).json.dump(), HasSubstr("Grüße aus Köln — und aus 東京!"));
  EXPECT_EQ(bot->stop(), 0);
}

TEST(Email, AReplyWhileSmtpIsDownIsRetriedAndSentOnce) {
  EmailBed bed;
  auto bot = bed.start("outbox:\n  retry_ms: 500\n");
  bed.mail.stop_smtp();
  bed.mail.deliver("bot", mail("Alice <alice@parley.test>", "Hello", "Anyone?", "s1@parley.test"));
  // The turn runs and its reply fails to go (nothing listens); it stays owed.
  for (int i = 0; i < 200 && bed.llm.request_count() == 0; ++i) std::this_thread::sleep_for(50ms);
  ASSERT_EQ(bed.llm.request_count(), 1u);
  std::this_thread::sleep_for(1500ms);  // a few retries against the closed port
  EXPECT_TRUE(bed.mail.messages("alice").empty());
  bed.mail.start_smtp();
  auto got = bed.replies(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].header("In-Reply-To"), "<s1@parley.test>");
  EXPECT_EQ(bed.mail.wait_messages("alice", 2, 2s).size(), 1u) << "sent once";
  EXPECT_EQ(bed.llm.request_count(), 1u);
  EXPECT_EQ(bot->stop(), 0);
}

TEST(Email, AKillBetweenStoringAMailAndMarkingItReadAnswersItOnceAfterTheRestart) {
  EmailBed bed;
  auto slow_calls = std::make_shared<std::atomic<int>>(0);
  bed.llm.set_handler(
      [slow_calls](const parley::fakes::RecordedRequest& r) -> std::optional<FakeReply> {
        const std::string text = email_last_user_text(r);
        auto reply = FakeReply::text("re: " + text);
        if (text.find("Take your time.") != std::string::npos && slow_calls->fetch_add(1) == 0) {
          reply.delay_before_headers = 20s;
        }
        return reply;
      });
  {
    auto bot = bed.start();
    bed.mail.deliver(
        "bot", mail("Alice <alice@parley.test>", "Slow", "Take your time.", "k1@parley.test"));
    // The mail is stored (the turn runs) and the server not yet told: SIGKILL now.
    for (int i = 0; i < 300 && bed.llm.request_count() == 0; ++i) {
      std::this_thread::sleep_for(50ms);
    }
    ASSERT_EQ(bed.llm.request_count(), 1u);
    EXPECT_FALSE(bed.mail.messages("bot").at(0).seen());
    bot->kill();
  }
  // The restart fetches it again (never marked), finds it stored and unanswered: answered once.
  auto bot = bed.start();
  auto got = bed.replies(1, 30s);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].header("In-Reply-To"), "<k1@parley.test>");
  EXPECT_EQ(bed.mail.wait_messages("alice", 2, 2s).size(), 1u) << "answered once";
  EXPECT_EQ(bed.llm.request_count(), 2u);
  for (int i = 0; i < 100 && !bed.mail.messages("bot").at(0).seen(); ++i) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(bed.mail.messages("bot").at(0).seen());
  EXPECT_EQ(bot->stop(), 0);
}

TEST(Email, ProcessedMoveFilesAnsweredMailInAFolderItCreates) {
  EmailBed bed;
  auto bot = bed.start("channels:\n  email:\n    imap:\n      host: 127.0.0.1\n      port: " +
                       std::to_string(bed.mail.imap_port()) +
                       "\n      tls: none\n      user: bot\n      processed: {move: Answered}\n");
  bed.mail.deliver("bot", mail("Alice <alice@parley.test>", "File me", "Hello.", "f1@parley.test"));
  ASSERT_EQ(bed.replies(1).size(), 1u);
  // "Answered" does not exist yet: the server says TRYCREATE, parley creates it and moves.
  auto filed = bed.mail.wait_messages("bot", 1, 10s, "Answered");
  ASSERT_EQ(filed.size(), 1u);
  EXPECT_EQ(filed[0].header("Message-ID"), "<f1@parley.test>");
  EXPECT_TRUE(bed.mail.messages("bot").empty()) << "moved out of INBOX";
  bed.mail.deliver("bot", mail("Alice <alice@parley.test>", "Again", "Hi.", "f2@parley.test"));
  ASSERT_EQ(bed.replies(2).size(), 2u);
  EXPECT_EQ(bed.mail.wait_messages("bot", 2, 10s, "Answered").size(), 2u);
  EXPECT_EQ(bot->stop(), 0);
}

TEST(Email, WithATrustedAuthservAllowedSendersMustBeAuthenticated) {
  EmailBed bed;
  auto bot = bed.start(
      "channels:\n  email:\n    allow: [alice@parley.test]\n"
      "    trusted_authserv_id: mx.parley.test\n");
  // dmarc=pass from our server: trusted.
  bed.mail.deliver("bot",
                   mail("Alice <alice@parley.test>", "One", "Signed by DMARC.", "t1@parley.test",
                        "Authentication-Results: mx.parley.test; spf=pass "
                        "smtp.mailfrom=parley.test; dmarc=pass header.from=parley.test\n"));
  // No Authentication-Results: a From anyone could write.
  bed.mail.deliver("bot", mail("Alice <alice@parley.test>", "Two", "Forged?", "t2@parley.test"));
  // A pass from a server we do not trust (added by the sender themselves).
  bed.mail.deliver(
      "bot", mail("Alice <alice@parley.test>", "Three", "Forged too.", "t3@parley.test",
                  "Authentication-Results: mx.evil.test; dmarc=pass header.from=parley.test\n"));
  // Aligned DKIM from our server: trusted.
  bed.mail.deliver(
      "bot", mail("Alice <alice@parley.test>", "Four", "Signed by DKIM.", "t4@parley.test",
                  "Authentication-Results: mx.parley.test; dkim=pass header.d=parley.test\n"));
  auto got = bed.replies(2);
  ASSERT_EQ(got.size(), 2u);
  // Two threads: their replies go out side by side, in either order.
  EXPECT_THAT(
      (std::vector<std::string>{got[0].header("In-Reply-To"), got[1].header("In-Reply-To")}),
      ::testing::UnorderedElementsAre("<t1@parley.test>", "<t4@parley.test>"));
  EXPECT_EQ(bed.mail.wait_messages("alice", 3, 1500ms).size(), 2u)
      << "a forged From is neither answered nor told (the notice would reach someone else)";
  EXPECT_EQ(bed.llm.request_count(), 2u);
  EXPECT_EQ(bot->stop(), 0);
}

TEST(Email, ASenderIsAnsweredAtMostRepliesPerHourTimes) {
  EmailBed bed;
  auto bot = bed.start("channels:\n  email:\n    replies_per_hour: 2\n");
  for (int i = 1; i <= 3; ++i) {
    const std::string n = std::to_string(i);
    bed.mail.deliver("bot", mail("Alice <alice@parley.test>", "Ping " + n, "Ping " + n + ".",
                                 "h" + n + "@parley.test"));
  }
  auto got = bed.replies(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(bed.mail.wait_messages("alice", 3, 1500ms).size(), 2u) << "the third not answered";
  EXPECT_EQ(bed.llm.request_count(), 2u);
  // Carol has a cap of her own.
  bed.mail.deliver("bot", mail("Carol <carol@parley.test>", "Hi", "Hello.", "c1@parley.test"));
  EXPECT_EQ(bed.mail.wait_messages("carol", 1).size(), 1u);
  EXPECT_EQ(bot->stop(), 0);
}

TEST(Email, EmailCheckShowsWhatTheServersOffer) {
  EmailBed bed;
  const std::string env =
      "PARLEY_IMAP_URL=imap://bot@127.0.0.1:" + std::to_string(bed.mail.imap_port()) +
      "/INBOX PARLEY_IMAP_PASSWORD=botpass PARLEY_SMTP_URL=smtp://bot@127.0.0.1:" +
      std::to_string(bed.mail.smtp_port()) +
      " PARLEY_SMTP_PASSWORD=botpass PARLEY_EMAIL_FROM=bot@parley.test";
  const auto ok = parley::testing::parley(bed.dir.path(), "email check", env);
  EXPECT_EQ(ok.code, 0) << ok.out << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("IDLE yes"));
  EXPECT_THAT(ok.out, HasSubstr("UIDVALIDITY"));
  EXPECT_THAT(ok.out, HasSubstr("PLAIN"));
  const auto bad = parley::testing::parley(
      bed.dir.path(), "email check",
      "PARLEY_IMAP_URL=imap://bot@127.0.0.1:" + std::to_string(bed.mail.imap_port()) +
          "/INBOX PARLEY_IMAP_PASSWORD=wrong-secret PARLEY_SMTP_URL=smtp://bot@127.0.0.1:" +
          std::to_string(bed.mail.smtp_port()) +
          " PARLEY_SMTP_PASSWORD=wrong-secret PARLEY_EMAIL_FROM=bot@parley.test");
  EXPECT_EQ(bad.code, 1);
  EXPECT_THAT(bad.err, HasSubstr("refused"));
  EXPECT_EQ((bad.out + bad.err).find("wrong-secret"), std::string::npos) << "never the password";
}

// A reply with a file (the model exports the calendar) is multipart/mixed: the text, then the
// file as a base64 attachment under its name. It goes through the outbox pump, like every email
// reply.
TEST(Email, AFileOfAReplyIsAttachedToTheMail) {
  EmailBed bed;
  bed.llm.set_handler([](const parley::fakes::RecordedRequest& r) -> std::optional<FakeReply> {
    if (r.json["messages"].back()["role"] == "tool") return FakeReply::text("Here it is.");
    return FakeReply::tools({{"call_1", "events", R"({"action": "export"})"}});
  });
  auto bot = bed.start();
  bed.mail.deliver("bot", mail("Alice <alice@parley.test>", "Calendar",
                               "Please export my events as a calendar file.", "c1@parley.test"));
  const auto got = bed.replies(1);
  ASSERT_EQ(got.size(), 1u);
  const std::string& raw = got[0].raw;
  EXPECT_THAT(raw, HasSubstr("multipart/mixed"));
  EXPECT_THAT(raw, HasSubstr("Here it is."));
  const size_t at = raw.find("filename=events.ics");
  ASSERT_NE(at, std::string::npos) << raw;
  EXPECT_THAT(raw, HasSubstr("Content-Type: text/calendar"));
  EXPECT_THAT(raw, HasSubstr("Content-Disposition: attachment"));
  // The part's body: after its headers, up to the closing boundary (the mailbox stores LF).
  const size_t start = raw.find("\n\n", at) + 2;
  const size_t end = raw.find("\n--", start);
  std::string b64;
  for (char c : raw.substr(start, end - start)) {
    if (c != '\r' && c != '\n') b64 += c;
  }
  const auto ics = parley::base64_decode(b64);
  ASSERT_TRUE(ics) << raw.substr(start, end - start);
  EXPECT_THAT(*ics, HasSubstr("BEGIN:VCALENDAR"));
  EXPECT_THAT(*ics, HasSubstr("END:VCALENDAR"));
  EXPECT_EQ(bot->stop(), 0);
}

}  // namespace email_test
