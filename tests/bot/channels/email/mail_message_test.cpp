// parse_mail on mails as clients send them: multipart/alternative, HTML only, quoted-printable
// ISO-8859-1 with an RFC 2047 subject, base64 UTF-8, attachments with RFC 2231 names, Outlook
// and Gmail replies, signatures, format=flowed, a bounce, automatic and list headers, raw 8-bit
// headers, bad charsets and bytes, oversize and garbage input, and several threads at once;
// strip_quoted on its own.
#include "channels/email/mail_message.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <thread>
#include <vector>

#include "parley/base/text.h"

namespace parley::bot::channels::email {
namespace mail_message_test {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr size_t kLimit = 1 << 20;

std::string crlf(std::string_view lf) {
  std::string out;
  for (char c : lf) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

ParsedMail parsed(std::string_view raw) {
  auto r = parse_mail(raw, kLimit);
  EXPECT_TRUE(r.ok()) << r.error().describe();
  return r.ok() ? std::move(r).value() : ParsedMail{};
}

const std::string kAlternative = R"(Return-Path: <kim@example.org>
Received: from mail.example.org by mx.parley.test; Tue, 07 Jan 2025 08:14:05 +0000
From: "Kim Lee" <Kim.Lee@Example.ORG>
To: Parley <bot@parley.test>, other@example.net
Cc: team@example.org
Reply-To: Kim at home <kim@home.example>
Subject: Lunch on Friday?
Date: Tue, 07 Jan 2025 09:14:03 +0100
Message-ID: <CAF=abc123@mail.example.org>
In-Reply-To: <parley.42@parley.test> (the bot's answer)
References: <first@example.org>
 <parley.42@parley.test>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="000000000000b1"

--000000000000b1
Content-Type: text/plain; charset="UTF-8"

Could we meet at noon?

Kim

--000000000000b1
Content-Type: text/html; charset="UTF-8"

<div dir="ltr">Could we meet at <b>noon</b>?<br><br>Kim (from HTML)</div>

--000000000000b1--
)";

TEST(MailMessageTest, MultipartAlternativeReadsThePlainTextAndTheHeaders) {
  for (const std::string& raw : {kAlternative, crlf(kAlternative)}) {
    const ParsedMail m = parsed(raw);
    EXPECT_EQ(m.message_id, "CAF=abc123@mail.example.org");
    EXPECT_EQ(m.in_reply_to, "parley.42@parley.test");
    EXPECT_EQ(m.references,
              (std::vector<std::string>{"first@example.org", "parley.42@parley.test"}));
    EXPECT_EQ(m.subject, "Lunch on Friday?");
    EXPECT_EQ(m.date_ms, 1736237643000);
    EXPECT_EQ(m.from.address, "Kim.Lee@Example.ORG");
    EXPECT_EQ(m.from.lowercase, "kim.lee@example.org");
    EXPECT_EQ(m.from.name, "Kim Lee");
    EXPECT_EQ(m.from_count, 1u);
    ASSERT_EQ(m.to.size(), 2u);
    EXPECT_EQ(m.to[0].address, "bot@parley.test");
    EXPECT_EQ(m.to[0].name, "Parley");
    EXPECT_EQ(m.to[1].address, "other@example.net");
    ASSERT_EQ(m.cc.size(), 1u);
    EXPECT_EQ(m.cc[0].address, "team@example.org");
    ASSERT_EQ(m.reply_to.size(), 1u);
    EXPECT_EQ(m.reply_to[0].address, "kim@home.example");
    EXPECT_EQ(m.reply_to[0].name, "Kim at home");
    EXPECT_TRUE(m.has_return_path);
    EXPECT_FALSE(m.null_return_path);
    EXPECT_EQ(m.return_path, "kim@example.org");
    EXPECT_EQ(m.content_type, "multipart/alternative");
    EXPECT_EQ(m.full_text, "Could we meet at noon?\n\nKim");
    EXPECT_EQ(m.text, m.full_text);
    EXPECT_FALSE(m.text_from_html);
    EXPECT_TRUE(m.attachments.empty());
    EXPECT_EQ(m.raw_size, raw.size());
    EXPECT_FALSE(m.automation.auto_submitted);
    EXPECT_FALSE(m.automation.list_id);
  }
}

TEST(MailMessageTest, HtmlOnlyMailIsReducedToText) {
  const ParsedMail m = parsed(R"(From: news@shop.example
To: bot@parley.test
Subject: Your order
Message-ID: <o-1@shop.example>
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: 7bit

<html><head><title>Order</title><style>p { color: red }</style></head>
<body><p>Hello&nbsp;Kim,</p><p>Your order <b>#1234</b> has shipped.</p>
<ul><li>Tea</li><li>Cups</li></ul><script>track()</script></body></html>
)");
  EXPECT_TRUE(m.text_from_html);
  EXPECT_EQ(m.full_text, "Hello Kim,\n\nYour order #1234 has shipped.\n\n- Tea\n- Cups");
  EXPECT_EQ(m.text, m.full_text);
}

TEST(MailMessageTest, HtmlWhoseMetaTagNamesTheCharsetIsDecodedOnce) {
  // The part is converted to UTF-8 before libxml2 reads it; the <meta> must not decode it again.
  const ParsedMail m = parsed(
      "From: a@example.org\nSubject: x\nMIME-Version: 1.0\n"
      "Content-Type: text/html; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n"
      "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; "
      "charset=iso-8859-1\"></head><body><p>Caf\xE9 cr\xE8me</p></body></html>\n");
  EXPECT_EQ(m.text, "Café crème");
}

TEST(MailMessageTest, AlternativeWithABlankPlainPartFallsBackToTheHtml) {
  const ParsedMail m = parsed(R"(From: a@example.org
Subject: x
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary=b

--b
Content-Type: text/plain

   

--b
Content-Type: multipart/related; boundary=r

--r
Content-Type: text/html

<p>Only the HTML says it.</p><img src="cid:logo">
--r
Content-Type: image/png; name=logo.png
Content-ID: <logo>
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--r--
--b--
)");
  EXPECT_EQ(m.text, "Only the HTML says it.");
  EXPECT_TRUE(m.text_from_html);
  ASSERT_EQ(m.attachments.size(), 1u);
  EXPECT_EQ(m.attachments[0].name, "logo.png");
  EXPECT_EQ(m.attachments[0].content_type, "image/png");
  EXPECT_EQ(m.attachments[0].size, 8u);
}

TEST(MailMessageTest, QuotedPrintableLatin1BodyAndEncodedSubjectBecomeUtf8) {
  const ParsedMail m = parsed(R"(From: =?ISO-8859-1?Q?J=FCrgen_M=FCller?= <jm@example.de>
To: bot@parley.test
Subject: =?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?= und
 =?ISO-8859-1?Q?M=FCnchen?=
Date: Mon, 3 Mar 2025 17:05:00 +0100
MIME-Version: 1.0
Content-Type: text/plain; charset=ISO-8859-1
Content-Transfer-Encoding: quoted-printable

Sch=F6ne Gr=FC=DFe, das kostet 5 =80 (windows-1252 unter falschem Namen).=
 Eine sehr lange Zeile, weich umbrochen.
)");
  EXPECT_EQ(m.subject, "Grüße aus Köln und München");
  EXPECT_EQ(m.from.name, "Jürgen Müller");
  EXPECT_EQ(m.date_ms, 1741017900000);
  EXPECT_EQ(m.text,
            "Schöne Grüße, das kostet 5 € (windows-1252 unter falschem Namen). Eine sehr lange "
            "Zeile, weich umbrochen.");
}

TEST(MailMessageTest, Base64Utf8Body) {
  const ParsedMail m = parsed(R"(From: Ivan <ivan@example.ru>
To: bot@parley.test
Subject: =?UTF-8?B?0J/RgNC40LLQtdGC?=
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

0J/RgNC40LLQtdGCLCDQvNC40YAhINCa0LDQuiDQtNC10LvQsD8g8J+RiwrQktGC0L7RgNCw0Y8g
0YHRgtGA0L7QutCwLgo=
)");
  EXPECT_EQ(m.subject, "Привет");
  EXPECT_EQ(m.text, "Привет, мир! Как дела? 👋\nВторая строка.");

  // Byte-order marks (here two, and one inside) are dropped.
  EXPECT_EQ(parsed("From: a@b.example\nContent-Type: text/plain; charset=utf-8\n\n"
                   "\xEF\xBB\xBF\xEF\xBB\xBFHello\xEF\xBB\xBF there\n")
                .text,
            "Hello there");
}

// GMime 3.2.13 stops decoding base64 at the first '=' (jstedfast/gmime#133, #150): a run of
// padded RFC 2047 B-words, as Python's email package writes them, and a body encoded in padded
// chunks must still come out whole.
TEST(MailMessageTest, PaddedEncodedWordsAndChunkedBase64AreDecodedWhole) {
  const ParsedMail m = parsed(R"(From: =?utf-8?b?WsO2w6s=?= =?utf-8?b?IMOcbmFs?= <zoe@example.org>
To: bot@parley.test
Subject: =?utf-8?b?w5xuw69jw7Zkw6kg?= =?utf-8?b?w7s=?=
 =?utf-8?b?w7s=?= =?UTF-8?B?Yml0?= end
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

SGVsbG8=
IHdvcmxk
LCBhZ2Fpbi4=
--b
Content-Type: application/octet-stream; name="=?UTF-8?B?w7s=?= =?UTF-8?B?LnR4dA==?="
Content-Transfer-Encoding: base64

YWI=Y2Q=
--b--
)");
  EXPECT_EQ(m.from.name, "Zöë Ünal");
  EXPECT_EQ(m.subject, "Ünïcödé ûûbit end");
  EXPECT_EQ(m.text, "Hello world, again.");
  ASSERT_EQ(m.attachments.size(), 1u);
  EXPECT_EQ(m.attachments[0].name, "û.txt");
  EXPECT_EQ(m.attachments[0].size, 4u);
}

TEST(MailMessageTest, AttachmentsAreDescribedWithDecodedNames) {
  const ParsedMail m = parsed(R"(From: kim@example.org
To: bot@parley.test
Subject: Files
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="mixed"

This is a multi-part message in MIME format.
--mixed
Content-Type: text/plain; charset=us-ascii

Two files attached, and a forwarded mail.
--mixed
Content-Type: application/pdf; name="rates.pdf"
Content-Disposition: attachment; filename*=UTF-8''%E2%82%AC%20rates%202025.pdf
Content-Transfer-Encoding: base64

JVBERi0xLjQgZmFrZSBwZGYgYnl0ZXMgZm9yIHRoZSB0ZXN0CiVQREYtMS40IGZha2UgcGRmIGJ5
dGVzIGZvciB0aGUgdGVzdAolUERGLTEuNCBmYWtlIHBkZiBieXRlcyBmb3IgdGhlIHRlc3QK
--mixed
Content-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document
Content-Disposition: attachment;
 filename*0*=utf-8''%D0%9E%D1%82%D1%87;
 filename*1*=%D1%91%D1%82.docx
Content-Transfer-Encoding: base64

UEsDBA==
--mixed
Content-Type: image/jpeg; name="=?UTF-8?B?Wm/DqyDDnG5hbA==?=.jpg"
Content-Transfer-Encoding: base64

/9j/4AAQ
--mixed
Content-Type: text/plain; name=notes.txt
Content-Disposition: attachment; filename=notes.txt

These notes are an attachment, not the body.
--mixed
Content-Type: message/rfc822

From: someone@example.net
Subject: The forwarded one

Inner body.
--mixed--
)");
  EXPECT_EQ(m.text, "Two files attached, and a forwarded mail.");
  ASSERT_EQ(m.attachments.size(), 5u);
  EXPECT_EQ(m.attachments[0].name, "€ rates 2025.pdf");
  EXPECT_EQ(m.attachments[0].content_type, "application/pdf");
  EXPECT_EQ(m.attachments[0].size, 111u);
  EXPECT_EQ(m.attachments[1].name, "Отчёт.docx");
  EXPECT_EQ(m.attachments[1].size, 4u);
  EXPECT_EQ(m.attachments[2].name, "Zoë Ünal.jpg");
  EXPECT_EQ(m.attachments[2].content_type, "image/jpeg");
  EXPECT_EQ(m.attachments[2].size, 6u);
  EXPECT_EQ(m.attachments[3].name, "notes.txt");
  EXPECT_EQ(m.attachments[3].content_type, "text/plain");
  EXPECT_EQ(m.attachments[4].name, "The forwarded one");
  EXPECT_EQ(m.attachments[4].content_type, "message/rfc822");
  EXPECT_GT(m.attachments[4].size, 0u);
  EXPECT_THAT(m.full_text, Not(HasSubstr("notes are an attachment")));
  EXPECT_THAT(m.full_text, Not(HasSubstr("Inner body")));
}

TEST(MailMessageTest, OutlookReplyLosesItsQuotedHistory) {
  const ParsedMail m = parsed(R"(From: Dana Smith <dana@corp.example>
To: bot@parley.test
Subject: RE: Quarterly numbers
Thread-Topic: Quarterly numbers
MIME-Version: 1.0
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: 7bit

Yes, please send the full table.

Thanks,
Dana

-----Original Message-----
From: Parley <bot@parley.test>
Sent: Tuesday, January 7, 2025 9:14 AM
To: Dana Smith <dana@corp.example>
Subject: Quarterly numbers

Revenue was up 4%. Shall I send the table?
)");
  EXPECT_EQ(m.text, "Yes, please send the full table.\n\nThanks,\nDana");
  EXPECT_THAT(m.full_text, HasSubstr("Revenue was up 4%"));

  const ParsedMail underscores = parsed(R"(From: dana@corp.example
Subject: RE: Quarterly numbers
Content-Type: text/plain

Friday works.

________________________________
From: Parley <bot@parley.test>
Sent: Tuesday, January 7, 2025 9:14 AM
To: Dana Smith <dana@corp.example>
Subject: Quarterly numbers

Which day suits you?
)");
  EXPECT_EQ(underscores.text, "Friday works.");
}

TEST(MailMessageTest, GmailReplyLosesTheAttributionAndTheQuotes) {
  const ParsedMail m = parsed(R"(From: kim@example.org
Subject: Re: Lunch
Content-Type: text/plain; charset=UTF-8

Noon is fine.

On Tue, Jan 7, 2025 at 9:14 AM Parley <bot@parley.test> wrote:

> Would noon suit you?
>
> > Earlier: shall we have lunch?
)");
  EXPECT_EQ(m.text, "Noon is fine.");

  // Long attributions wrap onto two lines.
  const ParsedMail wrapped = parsed(R"(From: kim@example.org
Subject: Re: Lunch
Content-Type: text/plain; charset=UTF-8

Noon is fine.

On Tue, Jan 7, 2025 at 9:14 AM Parley Assistant Bot of the Example Team <
bot@parley.test> wrote:
> Would noon suit you?
)");
  EXPECT_EQ(wrapped.text, "Noon is fine.");
}

TEST(MailMessageTest, InlineAnswersBetweenQuotesAreKept) {
  const ParsedMail m = parsed(R"(From: kim@example.org
Subject: Re: Two questions
Content-Type: text/plain

Kim <kim@example.org> wrote:
> First: tea or coffee?
Tea.

> Second: when?
Tomorrow morning.
)");
  EXPECT_EQ(m.text, "Tea.\n\nTomorrow morning.");
}

TEST(MailMessageTest, SignaturesAreStripped) {
  const ParsedMail m = parsed(
      "From: kim@example.org\nSubject: Question\nContent-Type: text/plain\n\n"
      "What is the capital of Australia?\n\n-- \nKim Lee\nACME Corp | +1 555 0100\n");
  EXPECT_EQ(m.text, "What is the capital of Australia?");
  EXPECT_EQ(m.full_text,
            "What is the capital of Australia?\n\n-- \nKim Lee\nACME Corp | +1 555 0100");

  const ParsedMail mobile = parsed(
      "From: kim@example.org\nSubject: Question\nContent-Type: text/plain\n\n"
      "Is it Canberra?\n\nSent from my iPhone\n");
  EXPECT_EQ(mobile.text, "Is it Canberra?");

  // A signature above the quoted history (top-posting) takes the history with it.
  const ParsedMail both = parsed(
      "From: kim@example.org\nSubject: Re: Question\nContent-Type: text/plain\n\n"
      "Thanks!\n--\nKim\n\nOn Tue, Jan 7, 2025 at 9:14 AM Parley <bot@parley.test> wrote:\n"
      "> Canberra.\n");
  EXPECT_EQ(both.text, "Thanks!");
}

TEST(MailMessageTest, FlowedTextIsJoined) {
  const ParsedMail m = parsed(
      "From: kim@example.org\nSubject: Flowed\n"
      "Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\n\n"
      "This is a long para \ngraph that was wrapped.\n \nNew paragraph.\n");
  EXPECT_EQ(m.text, "This is a long paragraph that was wrapped.\n\nNew paragraph.");
}

TEST(MailMessageTest, ForwardsKeepWhatTheyForward) {
  const std::string body =
      "See below.\n\n---------- Forwarded message ---------\nFrom: Alice <alice@example.org>\n"
      "Date: Mon, Jan 6, 2025 at 10:00 AM\nSubject: Budget\nTo: Kim <kim@example.org>\n\n"
      "The numbers are in.\n";
  const ParsedMail m =
      parsed("From: kim@example.org\nSubject: Fwd: Budget\nContent-Type: text/plain\n\n" + body);
  EXPECT_THAT(m.text, HasSubstr("The numbers are in."));
  EXPECT_EQ(strip_quoted("FYI\n\nFrom: Alice\nSent: Monday\nTo: Kim\nSubject: Budget\n\nNumbers.",
                         "FW: Budget"),
            "FYI\n\nFrom: Alice\nSent: Monday\nTo: Kim\nSubject: Budget\n\nNumbers.");
}

TEST(MailMessageTest, StripQuotedKeepsProseThatOnlyLooksLikeAnAttribution) {
  EXPECT_EQ(strip_quoted("On Monday my boss wrote:\nwe need more tests.", "Re: x"),
            "On Monday my boss wrote:\nwe need more tests.");
  EXPECT_EQ(
      strip_quoted("a\n--\n" + std::string(40, 'x') + "\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11", "x"),
      "a\n--\n" + std::string(40, 'x') + "\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11");
  // Only quotes: the text itself rather than nothing.
  EXPECT_EQ(strip_quoted("> all quoted\n> here\n", "Re: x"), "> all quoted\n> here");
}

TEST(MailMessageTest, HtmlReplyLosesItsUnquotedHistory) {
  const ParsedMail m = parsed(R"(From: kim@example.org
Subject: Re: Lunch
Content-Type: text/html; charset=utf-8

<div>Noon is fine.</div><div class="gmail_quote"><div>On Tue, Jan 7, 2025 at 9:14 AM Parley &lt;bot@parley.test&gt; wrote:</div><blockquote>Would noon suit you?</blockquote></div>
)");
  EXPECT_EQ(m.text, "Noon is fine.");
  EXPECT_THAT(m.full_text, HasSubstr("Would noon suit you?"));
}

TEST(MailMessageTest, BounceIsAReportWithANullReturnPath) {
  const ParsedMail m = parsed(R"(Return-Path: <>
From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: bot@parley.test
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
 boundary="B1"

--B1
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

--B1
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Final-Recipient: rfc822; gone@example.net
Action: failed
Status: 5.1.1

--B1
Content-Type: text/rfc822-headers

From: Parley <bot@parley.test>
Subject: Re: Hello

--B1--
)");
  EXPECT_TRUE(m.has_return_path);
  EXPECT_TRUE(m.null_return_path);
  EXPECT_EQ(m.return_path, "");
  EXPECT_EQ(m.content_type, "multipart/report");
  EXPECT_EQ(m.report_type, "delivery-status");
  EXPECT_EQ(m.from.lowercase, "mailer-daemon@mx.example.net");
  EXPECT_EQ(m.automation.auto_submitted, "auto-replied");
  EXPECT_THAT(m.text, HasSubstr("could not\nbe delivered"));
  ASSERT_EQ(m.attachments.size(), 2u);
  EXPECT_EQ(m.attachments[0].content_type, "message/delivery-status");
  EXPECT_EQ(m.attachments[1].content_type, "text/rfc822-headers");
}

TEST(MailMessageTest, AutomationAndListHeadersAreRead) {
  const ParsedMail m = parsed(R"(From: list@lists.example.org
Subject: [dev] Weekly digest
Auto-Submitted: no
Auto-Submitted: Auto-Generated (digest); owner=list@lists.example.org
Precedence: BULK
List-Id: Developers <dev.lists.example.org>
List-Unsubscribe: <mailto:dev-leave@lists.example.org>
List-Post: <mailto:dev@lists.example.org>
X-Auto-Response-Suppress: All
X-Autoreply: yes
X-Autorespond: yes
X-Autogenerated: Reply
Authentication-Results: mx.parley.test;
  dkim=pass (1024-bit key) header.d=lists.example.org;
  spf=pass smtp.mailfrom=lists.example.org
Authentication-Results: evil.example; dmarc=pass
Content-Type: text/plain

Digest.
)");
  const AutomationHeaders& a = m.automation;
  EXPECT_EQ(a.auto_submitted, "auto-generated");
  EXPECT_EQ(a.precedence, "bulk");
  EXPECT_TRUE(a.list_id);
  EXPECT_TRUE(a.list_unsubscribe);
  EXPECT_TRUE(a.list_post);
  EXPECT_TRUE(a.x_auto_response_suppress);
  EXPECT_TRUE(a.x_autoreply);
  EXPECT_TRUE(a.x_autorespond);
  EXPECT_TRUE(a.x_autogenerated);
  ASSERT_EQ(m.authentication_results.size(), 2u);
  EXPECT_EQ(m.authentication_results[0],  // unfolded, otherwise as written
            "mx.parley.test;  dkim=pass (1024-bit key) header.d=lists.example.org;  spf=pass "
            "smtp.mailfrom=lists.example.org");
  EXPECT_EQ(m.authentication_results[1], "evil.example; dmarc=pass");
}

TEST(MailMessageTest, RawEightBitHeadersAndBadBodyBytesNeverBreakTheText) {
  // An unlabelled body that is not UTF-8 is read as windows-1252; a subject in raw UTF-8 is
  // kept; a raw latin-1 name falls back.
  const ParsedMail m = parsed(
      "From: J\xFCrgen <j@example.de>\nSubject: Gr\xC3\xBC\xC3\x9F"
      "e\nContent-Type: text/plain\n\n"
      "Sch\xF6n \x93zitiert\x94\n");
  EXPECT_EQ(m.subject, "Grüße");
  EXPECT_EQ(m.from.name, "Jürgen");
  EXPECT_EQ(m.text, "Schön “zitiert”");

  // Declared UTF-8 with stray bytes, a charset nobody knows, a sequence invalid in its charset.
  for (const std::string& raw :
       {std::string(
            "From: a@b.example\nContent-Type: text/plain; charset=utf-8\n\nok \xFF\xFE end\n"),
        std::string(
            "From: a@b.example\nContent-Type: text/plain; charset=x-no-such\n\nok \xC3\xA9\n"),
        std::string("From: a@b.example\nContent-Type: text/plain; charset=shift_jis\n\nok \x82\n"),
        std::string(
            "From: a@b.example\nContent-Type: text/plain; charset=iso-2022-jp\n\n\x1B$B")}) {
    const ParsedMail p = parsed(raw);
    EXPECT_FALSE(invalid_utf8_at(p.text)) << p.text;
    EXPECT_FALSE(invalid_utf8_at(p.full_text));
  }
  EXPECT_EQ(
      parsed("From: a@b.example\nContent-Type: text/plain; charset=x-no-such\n\nok \xC3\xA9\n")
          .text,
      "ok é");
  EXPECT_EQ(parsed("From: a@b.example\nContent-Type: text/plain; charset=shift_jis\n\n"
                   "\x93\xFA\x96\x7B \x82\n")
                .text,
            "日本 \xEF\xBF\xBD");
}

TEST(MailMessageTest, CharsetNamesMailersUseAreUnderstood) {
  const auto text_in = [](const std::string& charset, const std::string& bytes) {
    return parsed("From: a@b.example\nContent-Type: text/plain; charset=\"" + charset + "\"\n\n" +
                  bytes + "\n")
        .text;
  };
  EXPECT_EQ(text_in("ISO8859_1", "caf\xE9"), "café");
  EXPECT_EQ(text_in("iso_8859-15", "\xA4"), "€");
  EXPECT_EQ(text_in("ks_c_5601-1987", "\xBE\xC8\xB3\xE7"), "안녕");
  EXPECT_EQ(text_in("iso-8859-8-i", "\xF9\xEC\xE5\xED"), "שלום");
  EXPECT_EQ(text_in("x-mac-roman", "caf\x8E"), "café");
  EXPECT_EQ(text_in("windows-1251", "\xCF\xF0\xE8\xE2\xE5\xF2"), "Привет");
  // Not a charset name (iconv would read "//" as options): like an unknown one.
  EXPECT_EQ(text_in("utf-8//IGNORE", "caf\xE9"), "café");
}

TEST(MailMessageTest, MissingAndBadHeadersGiveEmptyValues) {
  const ParsedMail m = parsed(
      "Subject: no sender\nDate: not a date at all\nReturn-Path: <bounces@x.example>\n\nbody\n");
  EXPECT_EQ(m.message_id, "");
  EXPECT_EQ(m.in_reply_to, "");
  EXPECT_TRUE(m.references.empty());
  EXPECT_EQ(m.date_ms, 0);
  EXPECT_EQ(m.from.address, "");
  EXPECT_EQ(m.from_count, 0u);
  EXPECT_EQ(m.return_path, "bounces@x.example");
  EXPECT_FALSE(m.null_return_path);
  EXPECT_EQ(m.text, "body");

  const ParsedMail headers_only = parsed("From: a@b.example\nSubject: only headers\n");
  EXPECT_EQ(headers_only.text, "");
  EXPECT_EQ(headers_only.subject, "only headers");

  const ParsedMail two_from = parsed("From: a@b.example, c@d.example\nFrom: e@f.example\n\nx\n");
  EXPECT_EQ(two_from.from_count, 3u);
  EXPECT_EQ(two_from.from.address, "a@b.example");
}

TEST(MailMessageTest, OversizeMailIsRefusedNamingBothSizes) {
  const std::string raw = "From: a@b.example\nSubject: big\n\n" + std::string(2000, 'x');
  const auto r = parse_mail(raw, 1000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  EXPECT_THAT(r.error().message, HasSubstr(std::to_string(raw.size())));
  EXPECT_THAT(r.error().message, HasSubstr("1000"));
  EXPECT_TRUE(parse_mail(raw, raw.size()).ok());
}

TEST(MailMessageTest, GarbageGivesAnErrorOrWhatCouldBeFound) {
  const auto empty = parse_mail("", kLimit);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, ErrorCode::invalid_argument);
  EXPECT_THAT(empty.error().message, HasSubstr("no header"));

  std::mt19937 rng(7);  // NOLINT(cert-msc51-cpp): a fixed seed, so that a failure repeats
  for (int i = 0; i < 300; ++i) {
    std::string bytes(static_cast<size_t>(rng() % 3000), '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    if (i % 3 == 0)
      bytes = "From: x@y.example\nContent-Type: multipart/mixed; boundary=z\n\n--z\n" + bytes;
    const auto r = parse_mail(bytes, kLimit);
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
      continue;
    }
    EXPECT_FALSE(invalid_utf8_at(r->text));
    EXPECT_FALSE(invalid_utf8_at(r->subject));
    for (const MailAttachment& a : r->attachments) EXPECT_FALSE(invalid_utf8_at(a.name));
  }
}

TEST(MailMessageTest, ThreadsParseAtOnce) {
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&failures, t] {
      for (int i = 0; i < 50; ++i) {
        const auto r = parse_mail(kAlternative, kLimit);
        if (!r.ok() || r->text != "Could we meet at noon?\n\nKim" ||
            r->from.lowercase != "kim.lee@example.org") {
          ++failures[static_cast<size_t>(t)];
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

}  // namespace mail_message_test
}  // namespace parley::bot::channels::email
