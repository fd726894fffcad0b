// never_answer on real-looking automatic mail (an out-of-office, Exchange's, a bounce, a list
// mail) and on each rule alone; sender_authenticated on Authentication-Results from our
// authserv-id and from others, DKIM alignment, comments, quoting and folding.
#include "channels/email/loop_guard.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

namespace parley::bot::channels::email {
namespace loop_guard_test {

using ::testing::HasSubstr;

constexpr size_t kLimit = 1 << 20;
constexpr const char* kTrusted = "mx.parley.test";

ParsedMail parsed(const std::string& raw) {
  auto r = parse_mail(raw, kLimit);
  EXPECT_TRUE(r.ok()) << r.error().describe();
  return r.ok() ? std::move(r).value() : ParsedMail{};
}

// A person's mail with `extra` headers added.
ParsedMail person(const std::string& extra = "", const std::string& from = "kim@example.org") {
  return parsed("Return-Path: <" + from + ">\nFrom: Kim <" + from +
                ">\nTo: bot@parley.test\nSubject: Hello\nMessage-ID: <m1@example.org>\n" + extra +
                "Content-Type: text/plain\n\nHello there.\n");
}

LoopContext context() {
  LoopContext c;
  c.own_address = "Bot@Parley.Test";
  c.sent_by_us = [](const std::string& id) { return id.starts_with("parley."); };
  return c;
}

std::string reason(const ParsedMail& m, const LoopContext& c = context()) {
  return never_answer(m, c).value_or("");
}

TEST(LoopGuardTest, APersonsMailMayBeAnswered) {
  EXPECT_EQ(never_answer(person(), context()), std::nullopt);
  EXPECT_EQ(never_answer(person("Auto-Submitted: no\nPrecedence: first-class\n"), context()),
            std::nullopt);
  EXPECT_EQ(never_answer(person(), LoopContext{}), std::nullopt);  // nothing configured
}

TEST(LoopGuardTest, OutOfOfficeReplyIsNotAnswered) {
  const ParsedMail m = parsed(R"(Return-Path: <kim@example.org>
From: Kim <kim@example.org>
To: bot@parley.test
Subject: Automatic reply: Your question
Auto-Submitted: auto-replied (vacation)
In-Reply-To: <elsewhere@example.net>
Content-Type: text/plain

I am out of the office until Monday.
)");
  EXPECT_EQ(reason(m), "Auto-Submitted: auto-replied");
}

TEST(LoopGuardTest, ExchangeAutoReplyWithoutAutoSubmittedIsNotAnswered) {
  const ParsedMail m = parsed(R"(From: Dana Smith <dana@corp.example>
To: bot@parley.test
Subject: Automatic reply: Quarterly numbers
Thread-Topic: Quarterly numbers
X-MS-Exchange-Organization-AutoResponse: true
X-Auto-Response-Suppress: All
Content-Type: text/plain; charset="us-ascii"

I am travelling with limited access to email.
)");
  EXPECT_EQ(reason(m), "X-Auto-Response-Suppress");
}

TEST(LoopGuardTest, BounceIsNotAnswered) {
  const ParsedMail m = parsed(R"(Return-Path: <>
From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: bot@parley.test
Subject: Undelivered Mail Returned to Sender
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"

--B1
Content-Type: text/plain

Your message could not be delivered.
--B1
Content-Type: message/delivery-status

Final-Recipient: rfc822; gone@example.net
Action: failed
Status: 5.1.1
--B1--
)");
  EXPECT_EQ(reason(m), "null Return-Path <>");
  // Each mark alone is enough.
  ParsedMail report = person();
  report.content_type = "multipart/report";
  report.report_type = "disposition-notification";
  EXPECT_EQ(reason(report), "multipart/report (disposition-notification)");
  EXPECT_THAT(reason(person("", "MAILER-DAEMON@mx.example.net")), HasSubstr("robot"));
  ParsedMail null_path = person();
  null_path.null_return_path = true;
  EXPECT_EQ(reason(null_path), "null Return-Path <>");
}

TEST(LoopGuardTest, ListMailIsNotAnswered) {
  const ParsedMail m = parsed(R"(From: Kim <kim@example.org>
To: dev@lists.example.org
Subject: [dev] Release plan
List-Id: Developers <dev.lists.example.org>
List-Unsubscribe: <mailto:dev-leave@lists.example.org>
Precedence: list
Content-Type: text/plain

Plan attached.
)");
  EXPECT_EQ(reason(m), "Precedence: list");
  EXPECT_EQ(reason(person("List-Id: <dev.lists.example.org>\n")), "mailing list (List-Id)");
  EXPECT_EQ(reason(person("List-Unsubscribe: <https://x.example/u>\n")),
            "mailing list (List-Unsubscribe)");
  EXPECT_EQ(reason(person("List-Post: <mailto:dev@lists.example.org>\n")),
            "mailing list (List-Post)");
}

TEST(LoopGuardTest, EachAutomaticHeaderAloneIsEnough) {
  EXPECT_EQ(reason(person("Auto-Submitted: auto-generated\n")), "Auto-Submitted: auto-generated");
  EXPECT_EQ(reason(person("Auto-Submitted: auto-notified\n")), "Auto-Submitted: auto-notified");
  EXPECT_EQ(reason(person("Auto-Submitted:\n")), "Auto-Submitted: (empty)");
  EXPECT_EQ(reason(person("Precedence: bulk\n")), "Precedence: bulk");
  EXPECT_EQ(reason(person("Precedence: List\n")), "Precedence: list");
  EXPECT_EQ(reason(person("Precedence: junk (spam)\n")), "Precedence: junk");
  EXPECT_EQ(reason(person("X-Auto-Response-Suppress: OOF, AutoReply\n")),
            "X-Auto-Response-Suppress");
  EXPECT_EQ(reason(person("X-Autoreply: yes\n")), "X-Autoreply");
  EXPECT_EQ(reason(person("X-Autorespond: Out of office\n")), "X-Autorespond");
  EXPECT_EQ(reason(person("X-Autogenerated: Reply\n")), "X-Autogenerated");
}

TEST(LoopGuardTest, RobotSendersAreNotAnswered) {
  for (const char* from : {"mailer-daemon@x.example", "Postmaster@x.example", "no-reply@x.example",
                           "NoReply@x.example", "noreply+tracking@x.example",
                           "do-not-reply@x.example", "donotreply@x.example"}) {
    EXPECT_THAT(reason(person("", from)), HasSubstr("robot")) << from;
  }
  for (const char* from : {"reply@x.example", "noreplyer@x.example", "kim.postmaster@x.example"}) {
    EXPECT_EQ(never_answer(person("", from), context()), std::nullopt) << from;
  }
  ParsedMail robot_path = person();
  robot_path.return_path = "MAILER-DAEMON@relay.example";
  EXPECT_EQ(reason(robot_path), "Return-Path mailer-daemon@relay.example is a robot");
}

TEST(LoopGuardTest, OurOwnMailIsNotAnswered) {
  EXPECT_EQ(reason(person("", "bot@parley.test")), "sent from our own address bot@parley.test");
  EXPECT_EQ(reason(person("Reply-To: <BOT@parley.test>\n")),
            "Reply-To is our own address bot@parley.test");
  EXPECT_EQ(reason(parsed("From: kim@example.org\nMessage-ID: <parley.77@parley.test>\n\nx\n")),
            "our own message <parley.77@parley.test> came back");
  EXPECT_EQ(reason(parsed("From: kim@example.org\n\nx\n")), "");
  EXPECT_EQ(reason(parsed("Subject: who?\n\nx\n")), "no sender address");
}

TEST(LoopGuardTest, RepliesToOurMailFollowTheContext) {
  const ParsedMail reply = person("In-Reply-To: <parley.42@parley.test>\n");
  EXPECT_EQ(reason(reply), "In-Reply-To <parley.42@parley.test> is a message we sent");
  LoopContext answering = context();
  answering.answer_replies_to_us = true;
  EXPECT_EQ(never_answer(reply, answering), std::nullopt);
  // …but an automatic reply to ours is still refused.
  EXPECT_EQ(reason(person("In-Reply-To: <parley.42@parley.test>\nAuto-Submitted: auto-replied\n"),
                   answering),
            "Auto-Submitted: auto-replied");
  std::set<std::string> asked;
  LoopContext recording = context();
  recording.sent_by_us = [&asked](const std::string& id) {
    asked.insert(id);
    return false;
  };
  EXPECT_EQ(never_answer(reply, recording), std::nullopt);
  EXPECT_EQ(asked, (std::set<std::string>{"m1@example.org", "parley.42@parley.test"}));
}

// --- sender_authenticated -------------------------------------------------------------------

ParsedMail with_results(const std::string& results, const std::string& from = "kim@example.org") {
  return parsed("Authentication-Results: " + results + "\nFrom: " + from +
                "\nSubject: x\n\nbody\n");
}

TEST(LoopGuardTest, DmarcPassFromOurServerAuthenticates) {
  EXPECT_TRUE(sender_authenticated(
      with_results("mx.parley.test; spf=pass smtp.mailfrom=example.org; dkim=pass "
                   "header.d=mailer.example; dmarc=pass header.from=example.org"),
      kTrusted));
  EXPECT_TRUE(sender_authenticated(with_results("MX.Parley.Test; dmarc=pass"), kTrusted));
  EXPECT_FALSE(sender_authenticated(
      with_results("mx.parley.test; dmarc=pass header.from=other.example"), kTrusted));
  EXPECT_FALSE(sender_authenticated(with_results("mx.parley.test; dmarc=fail"), kTrusted));
  EXPECT_FALSE(sender_authenticated(with_results("mx.parley.test; none"), kTrusted));
  EXPECT_FALSE(sender_authenticated(
      with_results("mx.parley.test; spf=pass smtp.mailfrom=example.org"), kTrusted))
      << "SPF checks the envelope sender, not From";
}

TEST(LoopGuardTest, ResultsFromAnotherAuthservIdAreIgnored) {
  EXPECT_FALSE(sender_authenticated(
      with_results("evil.example; dmarc=pass header.from=example.org; dkim=pass "
                   "header.d=example.org"),
      kTrusted));
  EXPECT_FALSE(
      sender_authenticated(with_results("mx.parley.test.evil.example; dmarc=pass"), kTrusted));
  EXPECT_FALSE(sender_authenticated(with_results("mx.parley.test; dmarc=pass"), ""));
  // Our server's header is the top one; a forged one below it claiming our id does not count.
  const ParsedMail forged = parsed(
      "Authentication-Results: mx.parley.test; dmarc=fail header.from=example.org\n"
      "Authentication-Results: mx.parley.test; dmarc=pass header.from=example.org\n"
      "From: kim@example.org\n\nx\n");
  EXPECT_FALSE(sender_authenticated(forged, kTrusted));
  const ParsedMail other_first = parsed(
      "Authentication-Results: relay.example; dmarc=fail\n"
      "Authentication-Results: mx.parley.test; dmarc=pass\n"
      "From: kim@example.org\n\nx\n");
  EXPECT_TRUE(sender_authenticated(other_first, kTrusted));
}

TEST(LoopGuardTest, DkimPassMustBeAlignedWithFrom) {
  const auto dkim = [](const std::string& d, const std::string& from = "kim@example.org") {
    return sender_authenticated(with_results("mx.parley.test; dkim=pass header.d=" + d, from),
                                kTrusted);
  };
  EXPECT_TRUE(dkim("example.org"));
  EXPECT_TRUE(dkim("Example.ORG."));
  EXPECT_TRUE(dkim("example.org", "kim@mail.eu.example.org"));  // From below the signer
  EXPECT_FALSE(dkim("mail.example.org"));                       // the signer below From
  EXPECT_FALSE(dkim("ample.org"));
  EXPECT_FALSE(dkim("le.org", "kim@example.org"));
  EXPECT_FALSE(dkim("evil.example"));
  EXPECT_FALSE(dkim("org"));
  EXPECT_FALSE(sender_authenticated(with_results("mx.parley.test; dkim=fail header.d=example.org"),
                                    kTrusted));
  EXPECT_FALSE(sender_authenticated(
      with_results("mx.parley.test; dkim=neutral (bad format) header.d=example.org"), kTrusted));
  // header.i when there is no header.d.
  EXPECT_FALSE(sender_authenticated(
      with_results("mx.parley.test; dkim=pass header.i=@news.example.org"), kTrusted));
  EXPECT_TRUE(sender_authenticated(
      with_results("mx.parley.test; dkim=pass header.i=kim@example.org", "kim@sub.example.org"),
      kTrusted));
  // A failing signature and an aligned passing one: the passing one counts.
  EXPECT_TRUE(
      sender_authenticated(with_results("mx.parley.test; dkim=fail header.d=example.org; dkim=pass "
                                        "header.d=example.org"),
                           kTrusted));
}

TEST(LoopGuardTest, TheHeaderIsReadRobustly) {
  // Comments anywhere (nested, with ';' and '=' inside), folding, quoted values, a version.
  EXPECT_TRUE(sender_authenticated(
      parsed("Authentication-Results: mx.parley.test 1 (version; of=it);\n"
             "\tspf=softfail (sender (not) permitted; x=y) smtp.mailfrom=evil.example;\n"
             "\tdkim = pass (2048-bit key; unprotected) header.d = \"example.org\"\n"
             "\t  header.s=sel1 header.b=\"AbC+/=\";\n"
             "\tdmarc=none header.from=example.org\n"
             "From: Kim <kim@example.org>\n\nx\n"),
      kTrusted));
  EXPECT_TRUE(sender_authenticated(
      with_results("(leading comment) mx.parley.test; DMARC=PASS (p=REJECT sp=REJECT) "
                   "header.from=EXAMPLE.org"),
      kTrusted));
  // Comments hide what looks like a pass.
  EXPECT_FALSE(sender_authenticated(
      with_results("mx.parley.test; dmarc=fail (dmarc=pass header.from=example.org)"), kTrusted));
  EXPECT_FALSE(sender_authenticated(
      with_results("mx.parley.test; dkim=fail (but header.d=example.org; dkim=pass)"), kTrusted));
  // Garbage is no pass.
  for (const char* junk : {"", ";", "mx.parley.test", "mx.parley.test;;;", "mx.parley.test; =pass",
                           "mx.parley.test; dmarc", "mx.parley.test; dmarc=", "(((",
                           "mx.parley.test; dkim=pass header.d", "\"mx.parley.test; dmarc=pass"}) {
    EXPECT_FALSE(sender_authenticated(with_results(junk), kTrusted)) << junk;
  }
}

TEST(LoopGuardTest, FromMustBeOneMailbox) {
  EXPECT_FALSE(sender_authenticated(
      with_results("mx.parley.test; dmarc=pass", "kim@example.org, eve@evil.example"), kTrusted));
  EXPECT_FALSE(sender_authenticated(parsed("Authentication-Results: mx.parley.test; dmarc=pass\n"
                                           "Subject: no from\n\nx\n"),
                                    kTrusted));
}

}  // namespace loop_guard_test
}  // namespace parley::bot::channels::email
