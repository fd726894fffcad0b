// reply_subject, reply_references, make_message_id, compose_mail (CRLF, encodings, headers
// that cannot be injected, the round trip through parse_mail, with and without HTML) and
// markdown_to_html (each construct, escaping, the links allowed).
#include "channels/email/mail_compose.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "parley/base/text.h"

namespace parley::bot::channels::email {
namespace mail_compose_test {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;

TEST(MailComposeTest, ReplySubjectAddsReOnce) {
  EXPECT_EQ(reply_subject("Lunch"), "Re: Lunch");
  EXPECT_EQ(reply_subject("Re: Lunch"), "Re: Lunch");
  EXPECT_EQ(reply_subject("RE: Lunch"), "Re: Lunch");
  EXPECT_EQ(reply_subject("re:Lunch"), "Re: Lunch");
  EXPECT_EQ(reply_subject("Re: Re: RE: Lunch"), "Re: Lunch");
  EXPECT_EQ(reply_subject("Re[2]: Lunch"), "Re: Lunch");
  EXPECT_EQ(reply_subject("Re(3): Lunch"), "Re: Lunch");
  EXPECT_EQ(reply_subject("Aw: Mittagessen"), "Re: Mittagessen");
  EXPECT_EQ(reply_subject("AW: Re: Mittagessen"), "Re: Mittagessen");
  EXPECT_EQ(reply_subject("SV: Lunsj"), "Re: Lunsj");
  EXPECT_EQ(reply_subject("Re : Déjeuner"), "Re: Déjeuner");
  EXPECT_EQ(reply_subject("Fwd: Lunch"), "Re: Fwd: Lunch");
  EXPECT_EQ(reply_subject("Re: Fwd: Lunch"), "Re: Fwd: Lunch");
  EXPECT_EQ(reply_subject("Regarding lunch"), "Re: Regarding lunch");
  EXPECT_EQ(reply_subject("Re[x]: odd"), "Re: Re[x]: odd");
  EXPECT_EQ(reply_subject(""), "Re: (no subject)");
  EXPECT_EQ(reply_subject("  Re:  "), "Re: (no subject)");
  EXPECT_EQ(reply_subject("Two\r\nlines"), "Re: Two  lines");
}

TEST(MailComposeTest, ReplyReferencesFollowRfc5322) {
  ParsedMail parent;
  parent.message_id = "p@x";
  EXPECT_EQ(reply_references(parent), std::vector<std::string>{"p@x"});
  parent.in_reply_to = "gp@x";
  EXPECT_EQ(reply_references(parent), (std::vector<std::string>{"gp@x", "p@x"}));
  parent.references = {"a@x", "gp@x"};
  EXPECT_EQ(reply_references(parent), (std::vector<std::string>{"a@x", "gp@x", "p@x"}));
  parent.references = {"a@x", "p@x"};  // already last: not twice
  EXPECT_EQ(reply_references(parent), (std::vector<std::string>{"a@x", "p@x"}));
  parent.message_id.clear();
  parent.references.clear();
  EXPECT_EQ(reply_references(parent), std::vector<std::string>{"gp@x"});
  parent.in_reply_to.clear();
  EXPECT_TRUE(reply_references(parent).empty());
}

TEST(MailComposeTest, LongThreadsKeepTheFirstAndTheLastReferences) {
  ParsedMail parent;
  for (int i = 0; i < 40; ++i) parent.references.push_back("r" + std::to_string(i) + "@x");
  parent.message_id = "p@x";
  const std::vector<std::string> refs = reply_references(parent);
  ASSERT_EQ(refs.size(), 21u);
  EXPECT_EQ(refs.front(), "r0@x");
  EXPECT_EQ(refs[1], "r21@x");
  EXPECT_EQ(refs[19], "r39@x");
  EXPECT_EQ(refs.back(), "p@x");
}

TEST(MailComposeTest, MessageIdsAreUniqueAndWellFormed) {
  std::set<std::string> seen;
  for (int i = 0; i < 2000; ++i) {
    const std::string id = make_message_id("Parley.Test");
    EXPECT_THAT(id, MatchesRegex("parley\\.[0-9a-f]{32}@parley\\.test"));
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 2000u);
  EXPECT_THAT(make_message_id("bad domain>\r\n<x"),
              MatchesRegex("parley\\.[0-9a-f]{32}@baddomainx"));
  EXPECT_THAT(make_message_id(""), MatchesRegex("parley\\.[0-9a-f]{32}@localhost"));
}

OutgoingMail reply_mail() {
  OutgoingMail m;
  m.from = {"bot@parley.test", "Parley Ünterstützung", ""};
  m.to = {{"kim@example.org", "Kim Lee", ""}, {"dana@corp.example", "", ""}};
  m.subject = reply_subject(
      "Grüße aus Köln — a long subject that goes on and on, past the point "
      "where a header line must be folded");
  m.date = std::chrono::system_clock::time_point(std::chrono::milliseconds(1736237643000));
  m.message_id = "parley.0123@parley.test";
  m.in_reply_to = "CAF=abc123@mail.example.org";
  for (int i = 0; i < 8; ++i) m.references.push_back("ref" + std::to_string(i) + "@example.org");
  m.references.push_back(m.in_reply_to);
  m.text = "Noon works.\nPrices: 5 €, naïve café.\n" + std::string(300, 'x') +
           "\n.dot-led line\nFrom the start\nLast line";
  return m;
}

void expect_crlf_only(const std::string& raw) {
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\n') {
      ASSERT_TRUE(i > 0 && raw[i - 1] == '\r') << "bare LF at " << i;
    }
    if (raw[i] == '\r') {
      ASSERT_TRUE(i + 1 < raw.size() && raw[i + 1] == '\n') << "bare CR at " << i;
    }
  }
  size_t start = 0;
  while (start < raw.size()) {
    size_t end = raw.find("\r\n", start);
    if (end == std::string::npos) end = raw.size();
    EXPECT_LE(end - start, 78u) << raw.substr(start, end - start);
    start = end + 2;
  }
}

TEST(MailComposeTest, ComposedMailHasTheHeadersAndRoundTrips) {
  const OutgoingMail out = reply_mail();
  const std::string raw = compose_mail(out);
  expect_crlf_only(raw);
  EXPECT_THAT(raw, HasSubstr("\r\nAuto-Submitted: auto-replied\r\n"));
  EXPECT_THAT(raw, HasSubstr("\r\nMIME-Version: 1.0\r\n"));
  EXPECT_THAT(raw, HasSubstr("Date: Tue, 07 Jan 2025 08:14:03 +0000\r\n"));
  EXPECT_THAT(raw, HasSubstr("Message-Id: <parley.0123@parley.test>\r\n"));
  EXPECT_THAT(raw, HasSubstr("In-Reply-To: <CAF=abc123@mail.example.org>\r\n"));
  EXPECT_THAT(raw, HasSubstr("Content-Type: text/plain; charset=utf-8\r\n"));
  EXPECT_THAT(raw, HasSubstr("Content-Transfer-Encoding: quoted-printable\r\n"));
  // The non-ASCII words of the name and the subject, RFC 2047-encoded; long headers folded.
  EXPECT_THAT(raw,
              StartsWith("From: Parley =?UTF-8?b?w5xudGVyc3TDvHR6dW5n?= <bot@parley.test>\r\n"));
  EXPECT_THAT(raw, HasSubstr("\r\nSubject: Re: =?UTF-8?B?"));
  EXPECT_THAT(raw, HasSubstr("\r\nReferences: <ref0@example.org> <ref1@example.org>"));
  for (unsigned char c : raw) EXPECT_LT(c, 0x80) << "8-bit byte in the message";

  const auto back = parse_mail(raw, 1 << 20);
  ASSERT_TRUE(back.ok()) << back.error().describe();
  EXPECT_EQ(back->from.address, "bot@parley.test");
  EXPECT_EQ(back->from.name, "Parley Ünterstützung");
  ASSERT_EQ(back->to.size(), 2u);
  EXPECT_EQ(back->to[0].name, "Kim Lee");
  EXPECT_EQ(back->to[1].address, "dana@corp.example");
  EXPECT_EQ(back->subject, out.subject);
  EXPECT_EQ(back->date_ms, 1736237643000);
  EXPECT_EQ(back->message_id, out.message_id);
  EXPECT_EQ(back->in_reply_to, out.in_reply_to);
  EXPECT_EQ(back->references, out.references);
  EXPECT_EQ(back->full_text, out.text);
  EXPECT_EQ(back->automation.auto_submitted, "auto-replied");
  EXPECT_EQ(back->content_type, "text/plain");
}

TEST(MailComposeTest, HtmlMakesAMultipartAlternative) {
  OutgoingMail out = reply_mail();
  out.text = "**Noon** works.\n\n- tea\n- cake";
  out.html = markdown_to_html(out.text);
  const std::string raw = compose_mail(out);
  expect_crlf_only(raw);
  EXPECT_THAT(raw, HasSubstr("Content-Type: multipart/alternative;\r\n\tboundary=\"=_parley_"));
  EXPECT_THAT(raw, HasSubstr("Content-Type: text/html; charset=utf-8\r\n"));
  const auto back = parse_mail(raw, 1 << 20);
  ASSERT_TRUE(back.ok()) << back.error().describe();
  EXPECT_EQ(back->content_type, "multipart/alternative");
  EXPECT_EQ(back->text, out.text);  // the plain part is preferred
  EXPECT_FALSE(back->text_from_html);
  EXPECT_TRUE(back->attachments.empty());

  // The HTML part, read alone, says the same.
  const size_t html_at = raw.find("Content-Type: text/html");
  ASSERT_NE(html_at, std::string::npos);
  const size_t end = raw.find("\r\n--=_parley_", html_at);
  const auto html_only =
      parse_mail("From: a@b.example\r\n" + raw.substr(html_at, end - html_at), 1 << 20);
  ASSERT_TRUE(html_only.ok());
  EXPECT_EQ(html_only->text, "Noon works.\n\n- tea\n- cake");
}

// Files make a multipart/mixed: the body (here text and HTML) first, then each file as a
// base64 attachment under its name — a non-ASCII name encoded (RFC 2231), bytes intact.
TEST(MailComposeTest, FilesAreAttachedAfterTheBody) {
  OutgoingMail out = reply_mail();
  out.text = "Your **calendar** and chart.";
  out.html = markdown_to_html(out.text);
  std::string png("\x89PNG\r\n\x1a\n", 8);
  for (int i = 0; i < 300; ++i) png += static_cast<char>(i);
  out.files = {parley::storage::OutboxFile{"events.ics", "text/calendar", "BEGIN:VCALENDAR", ""},
               parley::storage::OutboxFile{"humeur-été.png", "image/png", png, ""}};
  const std::string raw = compose_mail(out);
  expect_crlf_only(raw);
  for (unsigned char c : raw) ASSERT_LT(c, 0x80) << "8-bit byte in the message";
  EXPECT_THAT(raw, HasSubstr("Content-Type: multipart/mixed;"));
  EXPECT_THAT(raw, HasSubstr("Content-Disposition: attachment; filename=events.ics"));
  // RFC 2231 in the charset GMime picks (ISO-8859-1 here: é fits it); read back below.
  EXPECT_THAT(raw, ::testing::ContainsRegex("filename\\*=[a-z0-9-]+''humeur-%"));
  const auto back = parse_mail(raw, 1 << 20);
  ASSERT_TRUE(back.ok()) << back.error().describe();
  EXPECT_EQ(back->text, out.text) << "the text still reads as the body";
  ASSERT_EQ(back->attachments.size(), 2u);
  EXPECT_EQ(back->attachments[0].name, "events.ics");
  EXPECT_EQ(back->attachments[0].content_type, "text/calendar");
  EXPECT_EQ(back->attachments[0].size, 15u);
  EXPECT_EQ(back->attachments[1].name, "humeur-été.png");
  EXPECT_EQ(back->attachments[1].content_type, "image/png");
  EXPECT_EQ(back->attachments[1].size, png.size());
}

TEST(MailComposeTest, NothingGivenCanAddAHeader) {
  OutgoingMail out = reply_mail();
  out.subject = "Hi\r\nBcc: victim@example.org";
  out.from.name = "Bot\r\nX-Injected: 1";
  out.to = {{"kim@example.org>\r\nBcc: victim2@example.org", "", ""}};
  out.message_id = "id@x>\r\nX-Evil: 1";
  out.in_reply_to = "a@b\nX-Evil: 2";
  out.references = {"c@d\r\nX-Evil: 3"};
  const std::string raw = compose_mail(out);
  expect_crlf_only(raw);
  EXPECT_THAT(raw, Not(HasSubstr("\r\nBcc:")));
  EXPECT_THAT(raw, Not(HasSubstr("\r\nX-Injected:")));
  EXPECT_THAT(raw, Not(HasSubstr("\r\nX-Evil:")));
  const auto back = parse_mail(raw, 1 << 20);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->subject, "Hi  Bcc: victim@example.org");
  ASSERT_EQ(back->to.size(), 1u);
}

// GMime writes ASCII words as they are; one that looks like an encoded-word would be decoded by
// the reader.
TEST(MailComposeTest, TextThatLooksEncodedSurvives) {
  OutgoingMail out = reply_mail();
  out.subject =
      "Re: what does =?UTF-8?B?SGk=?= mean, and =?x?q?y?= – ünïcode " + std::string(60, 'y');
  out.to = {{"kim@example.org", "=?UTF-8?B?RXZl?=", ""}};
  const std::string raw = compose_mail(out);
  expect_crlf_only(raw);
  const auto back = parse_mail(raw, 1 << 20);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->subject, out.subject);
  ASSERT_EQ(back->to.size(), 1u);
  EXPECT_EQ(back->to[0].name, "");  // dropped rather than read as "Eve"
  EXPECT_EQ(back->to[0].address, "kim@example.org");
}

TEST(MailComposeTest, InvalidUtf8IsReplaced) {
  OutgoingMail out = reply_mail();
  out.subject = "bad \xFF byte";
  out.text = "text \xC3 cut";
  const auto back = parse_mail(compose_mail(out), 1 << 20);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->subject, "bad \xEF\xBF\xBD byte");
  EXPECT_EQ(back->text, "text \xEF\xBF\xBD cut");
}

TEST(MailComposeTest, ThreadsComposeAtOnce) {
  const OutgoingMail out = reply_mail();
  const std::string expected = compose_mail(out);
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        const auto back = parse_mail(compose_mail(out), 1 << 20);
        if (compose_mail(out) != expected || !back.ok() || back->full_text != out.text ||
            make_message_id("x.example") == make_message_id("x.example")) {
          ++failures[static_cast<size_t>(t)];
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

TEST(MailComposeTest, MarkdownParagraphsListsAndCode) {
  EXPECT_EQ(markdown_to_html("One\ntwo\n\nThree"), "<p>One<br>\ntwo</p>\n<p>Three</p>");
  EXPECT_EQ(markdown_to_html("Intro:\n- a\n* b\n\n- c\n\nAfter"),
            "<p>Intro:</p>\n<ul>\n<li>a</li>\n<li>b</li>\n<li>c</li>\n</ul>\n<p>After</p>");
  EXPECT_EQ(markdown_to_html("1. one\n2) two\n  more of two"),
            "<ol>\n<li>one</li>\n<li>two<br>more of two</li>\n</ol>");
  EXPECT_EQ(markdown_to_html("3. three\n4. four"),
            "<ol start=\"3\">\n<li>three</li>\n<li>four</li>\n</ol>");
  EXPECT_EQ(markdown_to_html("- a\n1. b"), "<ul>\n<li>a</li>\n</ul>\n<ol>\n<li>b</li>\n</ol>");
  EXPECT_EQ(markdown_to_html("```cpp\nif (a < b && c) {\n  x();\n}\n```\nafter"),
            "<pre><code>if (a &lt; b &amp;&amp; c) {\n  x();\n}</code></pre>\n<p>after</p>");
  EXPECT_EQ(markdown_to_html("```\nnever closed <b>"),
            "<pre><code>never closed &lt;b&gt;</code></pre>");
  EXPECT_EQ(markdown_to_html("## Title\ntext"), "<h2>Title</h2>\n<p>text</p>");
  EXPECT_EQ(markdown_to_html("a\n\n---\n\nb"), "<p>a</p>\n<hr>\n<p>b</p>");
}

TEST(MailComposeTest, MarkdownInlineMarks) {
  EXPECT_EQ(markdown_to_html("Use `a<b>` and ``x ` y`` here"),
            "<p>Use <code>a&lt;b&gt;</code> and <code>x ` y</code> here</p>");
  EXPECT_EQ(markdown_to_html("**bold `code`** and ** not bold**"),
            "<p><strong>bold <code>code</code></strong> and ** not bold**</p>");
  EXPECT_EQ(markdown_to_html("2 * 3 * 4 and `unclosed"), "<p>2 * 3 * 4 and `unclosed</p>");
  EXPECT_EQ(markdown_to_html("See [the docs](https://example.org/a?b=1&c=2)."),
            "<p>See <a href=\"https://example.org/a?b=1&amp;c=2\">the docs</a>.</p>");
  EXPECT_EQ(
      markdown_to_html("[mail](mailto:kim@example.org) [h](HTTP://x.example)"),
      "<p><a href=\"mailto:kim@example.org\">mail</a> <a href=\"HTTP://x.example\">h</a></p>");
}

TEST(MailComposeTest, MarkdownNeverLetsHtmlOrScriptsThrough) {
  EXPECT_EQ(markdown_to_html("<script>alert(1)</script> & 'q'"),
            "<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#39;q&#39;</p>");
  EXPECT_EQ(markdown_to_html("[x](javascript:alert(1))"), "<p>[x](javascript:alert(1))</p>");
  EXPECT_EQ(markdown_to_html("[x](data:text/html,hi)"), "<p>[x](data:text/html,hi)</p>");
  EXPECT_EQ(markdown_to_html("[x](http://a.example/ onclick=1)"),
            "<p>[x](http://a.example/ onclick=1)</p>");
  EXPECT_EQ(markdown_to_html("**[x](https://a.example/\"><script>)**"),
            "<p><strong>[x](https://a.example/&quot;&gt;&lt;script&gt;)</strong></p>");
  EXPECT_EQ(markdown_to_html("bad \xFF"), "<p>bad \xEF\xBF\xBD</p>");
  EXPECT_EQ(markdown_to_html(""), "");
}

}  // namespace mail_compose_test
}  // namespace parley::bot::channels::email
