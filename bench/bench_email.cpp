// bench_email: parley's email channel end to end — the real `parley run` binary, a process of its
// own, against a real Dovecot (IMAP with IDLE, LMTP) and Exim (SMTP with AUTH) on 127.0.0.1,
// started by tests/mail/mailstack through tests/support/mail_stack.h (MailStack), and
// fake_llm_server (answering "ok" at once: an instant LLM); and the channel's MIME reader
// (parse_mail, bot/src/channels/email/mail_message.h) on a corpus of mails generated here. Only
// 127.0.0.1; every process and server started here is stopped here (parley with SIGTERM, then
// SIGKILL; the mail stack when MailStack is destroyed, on failures too); children die with the
// bench (PR_SET_PDEATHSIG), and mailstack's watchdog stops the servers, should it be killed.
//
// parley runs as the integration tests start it (tests/integration/email_test.cpp): the servers
// through PARLEY_IMAP_URL / PARLEY_SMTP_URL (user bot, plain TCP: loopback), their passwords in
// PARLEY_IMAP_PASSWORD / PARLEY_SMTP_PASSWORD, PARLEY_EMAIL_FROM=bot@parley.test, the LLM through
// PARLEY_LLM_BASE_URL / _MODEL / _API_KEY, `--console off`, its own --config and --db; every other
// PARLEY_*, DISCORD_*, provider key and proxy variable is removed from its environment. Its
// parley.yaml lifts the two caps a bench would hit: channels.email.replies_per_hour (20 per sender
// by default; 10,000 here) and access.rate_limit (30 messages per user a minute; none here). Each
// parley has a new database: its first start leaves the mail already in the INBOX alone, so the
// bench waits for its cursor (channel_state 'email' / 'cursor:INBOX') before it delivers any.
// Every mail has a Message-ID of its own and no References: each is a conversation of its own
// (no lane merges two), and its row in `messages` has that id (without <>) as platform_id.
//
// Groups, in this order:
//   idle        a parley with IMAP IDLE (the default). One warm-up mail, then Sizes::idle mails
//               from alice, one at a time, each kIdleGap after the previous one was stored (so
//               that parley is back in IDLE): the time from the end of the LMTP delivery
//               (MailStack::deliver returning, i.e. after the message's 250 and the QUIT's 221)
//               to the message's row in parley's `messages` table, read by the bench on a
//               read-only connection every kDbPoll (the figure's resolution; the query itself
//               takes a few µs). The replies are then awaited in alice's mailbox. Most of the
//               figure is Dovecot's: it tells an IDLE client of new mail 500 ms after the change
//               it noticed (a raw IMAP client sees "* N EXISTS" 500 ms after the LMTP delivery,
//               every time), so parley's own part is the figure less about 500 ms.
//   poll        a new parley with `channels.email.imap.idle: false` and poll_interval_s
//               kPollInterval (the minimum the configuration allows). The same measure over
//               Sizes::poll mails; before each, a pause in [0, interval) after the previous one
//               was stored, so that deliveries fall at every phase of the poll cycle (delivering
//               at once would always land just after a poll and measure the whole interval).
//               The pauses are stratified (one in each of Sizes::poll equal slices of the
//               interval, in shuffled order), so that a few samples still spread evenly. The
//               expectation is interval/2 for the p50 and about the interval for the p99 (a
//               poll's own round trips are a few ms).
//   loop        a new parley with IDLE. A burst of Sizes::burst mails delivered back to back
//               over LMTP (one connection each, from the bench's thread), alternately from alice
//               and carol: from the first delivery's start to the last of the replies arriving in
//               their mailboxes (parley → SMTP → Exim → LMTP → Dovecot; the bench reads the
//               Maildirs every kMailPoll), mails per second, and parley's CPU time per mail.
//               Beside it, with no parley running (email_stack_*): the bench alone drives the
//               same mail legs — the same number of LMTP deliveries into bot's INBOX, then as many
//               SMTP submissions (AUTH PLAIN as bot, one connection each) to alice and carol —
//               until all of the latter are in their mailboxes: the mail stack's own rate, and the
//               ratio of the two. parley's loop adds IMAP fetch, parsing, storage, the turn and
//               the outbox to that. Where its time goes: the burst is stored within a second,
//               then the replies leave one at a time (the outbox pump has one send in flight),
//               each on an SMTP connection of its own that parley closes only after QUIT's 221,
//               which Exim sends some 200 ms after the message's 250 — about 4 replies a second.
//               MailStack::submit does not wait for that 221, so the stack's rate is without it.
//   parse       Sizes::corpus mails generated from kSeed, in eight kinds in turn: plain UTF-8
//               8bit; quoted-printable ISO-8859-1 with RFC 2047 Q subject and sender name;
//               base64 UTF-8 with a B subject; HTML only; multipart/alternative; multipart/mixed
//               with 1–3 attachments of 2 KiB to 400 KiB (log-uniform, base64); a reply with a
//               long quoted history (100 to 2,000 quoted lines, "On … wrote:" or Outlook's
//               "-----Original Message-----"); an attachment named with RFC 2231 (charset,
//               percent-encoding, continuations). CRLF line ends, as IMAP hands them over. An
//               untimed round first checks every result (Message-ID, attachments and their
//               names, text found); then Sizes::parse_rounds rounds time each parse_mail call
//               (the channel's limit, 10 MiB): p50, p99, mean, MB/s (1 MB = 10^6 bytes). Beside
//               it, the same rounds over the same bytes with a memchr line count
//               (scan_mb_per_s): what merely touching every byte costs, and the ratio.
//
// Figures go to stdout as `name value unit` lines (or one JSON object with --json); context to
// stderr. Times are printed, never asserted. --quick shrinks every size for a CI smoke run (about
// 30 s, most of it the poll group's waits). Exit 1 when a mail went unstored or unanswered, a
// corpus mail was misread, or a process misbehaved.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "bench_process.h"
#include "bench_report.h"
#include "bench_util.h"
#include "channels/email/mail_message.h"
#include "parley/storage/sqlite.h"
#include "support/mail_stack.h"

#ifndef PARLEY_BINARY
#define PARLEY_BINARY ""
#endif
#ifndef PARLEY_FAKE_LLM_SERVER
#define PARLEY_FAKE_LLM_SERVER ""
#endif

namespace {

namespace fs = std::filesystem;
namespace email = parley::bot::channels::email;
namespace storage = parley::storage;
using parley::testing::MailMessage;
using parley::testing::MailStack;
using namespace parley::bench;  // the benches' own kit: bench_report.h, bench_util.h
using std::chrono::milliseconds;
using std::chrono::seconds;

// ---- Parameters ----

constexpr std::string_view kModel = "bench/model";
constexpr int kPollInterval = 5;              // s: channels.email.poll_interval_s (its minimum)
constexpr auto kIdleGap = milliseconds(200);  // idle: after a mail is stored, before the next
constexpr auto kDbPoll = milliseconds(1);     // how often the bench looks for the row
constexpr auto kMailPoll = milliseconds(20);  // how often the bench reads the Maildirs
constexpr auto kStoredWait = seconds(30);     // a mail's row, before giving up
constexpr auto kCursorWait = seconds(15);     // parley's cursor after its start
constexpr auto kReplyWait = seconds(60);      // replies: any progress, before giving up
constexpr size_t kMaxMessageBytes = size_t{10} << 20;  // channels.email.max_message_bytes default
constexpr uint32_t kSeed = 20'261'206;
constexpr std::string_view kIdDomain = "bench.parley.test";

// Every size that --quick shrinks.
struct Sizes {
  size_t idle;          // idle: timed mails
  size_t poll;          // poll: timed mails (each costs about one poll interval)
  size_t burst;         // loop: mails at once (and the stack baseline's)
  size_t corpus;        // parse: mails
  size_t parse_rounds;  // parse: timed rounds over the corpus
};

constexpr Sizes kFullSizes{
    .idle = 100, .poll = 20, .burst = 200, .corpus = 1'000, .parse_rounds = 5};
constexpr Sizes kQuickSizes{.idle = 5, .poll = 3, .burst = 20, .corpus = 200, .parse_rounds = 2};

// ---- The programs ----

struct Paths {
  std::string parley = PARLEY_BINARY;
  std::string fake = PARLEY_FAKE_LLM_SERVER;
};

void check_executable(const std::string& path, const std::string& what, const std::string& flag) {
  if (path.empty() || ::access(path.c_str(), X_OK) != 0) {
    throw BenchError(
        fmt::format("{} not found or not executable at '{}' (give it with {})", what, path, flag));
  }
}

// fake_llm_server on a free port, answering "ok" at once.
class LlmFake {
 public:
  LlmFake(const Paths& paths, const fs::path& dir) : process_("fake_llm_server", spec(paths, dir)) {
    const auto line = process_.wait_line("port ").text;
    port_ = static_cast<uint16_t>(std::strtoul(line.c_str() + line.find("port ") + 5, nullptr, 10));
    if (port_ == 0) throw BenchError(fmt::format("fake_llm_server: no port in '{}'", line));
  }

  [[nodiscard]] std::string base_url() const {
    return fmt::format("http://127.0.0.1:{}/v1", port_);
  }
  void stop() { (void)process_.stop(); }

 private:
  static Spawn spec(const Paths& paths, const fs::path& dir) {
    Spawn s;
    s.argv = {paths.fake, "--delay-ms", "0", "--threads", "1"};
    s.env = clean_environment();
    s.log = dir / "fake_llm_server.log";
    s.stdin_pipe = true;
    return s;
  }

  Process process_;
  uint16_t port_ = 0;
};

// parley's database as the bench reads it: a read-only connection of its own, each read its own
// transaction (the statement is reset after it), so every read sees the latest commit.
class DbWatch {
 public:
  // REQUIRES: the database exists (parley printed its ready line).
  explicit DbWatch(const fs::path& db) {
    auto c = storage::Connection::open(
        db, storage::ConnectionOptions{.mode = storage::ConnectionOptions::Mode::read_only});
    if (!c) throw BenchError(fmt::format("cannot open {}: {}", db.string(), c.error().message));
    conn_ = std::make_unique<storage::Connection>(std::move(*c));
    stored_ = prepare("SELECT 1 FROM messages WHERE channel = 'email' AND platform_id = ?");
    count_ =
        prepare("SELECT count(*) FROM messages WHERE channel = 'email' AND platform_id LIKE ?");
    cursor_ =
        prepare("SELECT 1 FROM channel_state WHERE channel = 'email' AND key = 'cursor:INBOX'");
  }

  bool stored(const std::string& platform_id) { return one_row(stored_.bind_all(platform_id)); }

  bool has_cursor() { return one_row(cursor_.bind_all()); }

  // Rows of the channel whose platform_id is LIKE `pattern`.
  int64_t count(const std::string& pattern) {
    auto row = count_.bind_all(pattern).step();
    const int64_t n = row.ok() && *row ? count_.column_int64(0) : 0;
    count_.reset();
    return n;
  }

  // When the bench first saw `platform_id`'s row (looking every kDbPoll); nullopt after `wait`.
  std::optional<SteadyClock::time_point> wait_stored(const std::string& platform_id,
                                                     SteadyClock::duration wait) {
    const auto give_up = SteadyClock::now() + wait;
    for (;;) {
      if (stored(platform_id)) return SteadyClock::now();
      if (SteadyClock::now() >= give_up) return std::nullopt;
      std::this_thread::sleep_for(kDbPoll);
    }
  }

 private:
  storage::Statement prepare(std::string_view sql) {
    auto st = conn_->prepare(sql);
    if (!st) throw BenchError(fmt::format("cannot prepare '{}': {}", sql, st.error().message));
    return std::move(*st);
  }

  static bool one_row(storage::Statement& st) {
    auto row = st.step();
    const bool found = row.ok() && *row;
    st.reset();
    return found;
  }

  std::unique_ptr<storage::Connection> conn_;
  storage::Statement stored_;
  storage::Statement count_;
  storage::Statement cursor_;
};

// `parley run` against `mail` and `llm`, with `yaml` as its parley.yaml and a database of its own
// (both named after it in `dir`), up to its ready line and its email cursor.
class Parley {
 public:
  Parley(const Paths& paths, const fs::path& dir, const std::string& name, const LlmFake& llm,
         const MailStack& mail, const std::string& yaml)
      : log_(dir / (name + ".log")),
        db_(dir / (name + ".db")),
        process_(name, spec(paths, dir, name, llm, mail, yaml, log_, db_)) {
    try {
      const auto ready = process_.wait_line("ready in");
      if (ready.text.find("email (") == std::string::npos) {
        throw BenchError(fmt::format("{}: the email channel is not on: '{}'", name, ready.text));
      }
      db_watch_ = std::make_unique<DbWatch>(db_);
      // The first start takes the mailbox as it is: mail is new once the cursor is saved.
      const auto give_up = SteadyClock::now() + kCursorWait;
      while (!db_watch_->has_cursor()) {
        if (SteadyClock::now() >= give_up) {
          throw BenchError(
              fmt::format("{}: no email cursor after {} s", name, kCursorWait.count()));
        }
        std::this_thread::sleep_for(milliseconds(10));
      }
    } catch (const BenchError& e) {
      throw BenchError(fmt::format("{}; its log ends:\n{}", e.what(), tail(log_)));
    }
  }

  [[nodiscard]] pid_t pid() const { return process_.pid(); }
  [[nodiscard]] const fs::path& log() const { return log_; }
  [[nodiscard]] DbWatch& db() { return *db_watch_; }

  // SIGTERM; a non-zero exit is reported (the figures are kept).
  bool stop() {
    db_watch_.reset();
    const auto code = process_.stop();
    if (code != 0) {
      note("{} exited with {}; its log ends:\n{}", process_.name(),
           code ? std::to_string(*code) : std::string("SIGKILL"), tail(log_));
      return false;
    }
    return true;
  }

 private:
  static Spawn spec(const Paths& paths, const fs::path& dir, const std::string& name,
                    const LlmFake& llm, const MailStack& mail, const std::string& yaml,
                    const fs::path& log, const fs::path& db) {
    const fs::path config = dir / (name + ".yaml");
    write_file(config, yaml);
    Spawn s;
    s.argv = {paths.parley, "--config",    config.string(), "--db", db.string(), "run",
              "--http",     "127.0.0.1:0", "--console",     "off",  "--grace",   "2"};
    s.env = clean_environment();
    s.env.push_back("PARLEY_LLM_BASE_URL=" + llm.base_url());
    s.env.push_back("PARLEY_LLM_MODEL=" + std::string(kModel));
    s.env.emplace_back("PARLEY_LLM_API_KEY=sk-bench-0123456789abcdef");
    s.env.push_back(fmt::format("PARLEY_IMAP_URL=imap://bot@127.0.0.1:{}/INBOX", mail.imap_port()));
    s.env.push_back("PARLEY_IMAP_PASSWORD=" + MailStack::bot().password);
    s.env.push_back(fmt::format("PARLEY_SMTP_URL=smtp://bot@127.0.0.1:{}", mail.smtp_port()));
    s.env.push_back("PARLEY_SMTP_PASSWORD=" + MailStack::bot().password);
    s.env.push_back("PARLEY_EMAIL_FROM=" + MailStack::bot().address);
    s.env.push_back("XDG_RUNTIME_DIR=" + dir.string());
    s.cwd = dir;
    s.log = log;
    return s;
  }

  fs::path log_;  // before process_: its spec names it
  fs::path db_;
  Process process_;
  std::unique_ptr<DbWatch> db_watch_;
};

// parley.yaml: quiet logs, no caps a bench would hit; `poll`: IMAP polled every kPollInterval
// instead of IDLE (an `imap:` block must name its host; PARLEY_IMAP_URL gives the rest).
std::string parley_yaml(bool poll) {
  std::string yaml =
      "log:\n  level: warn\naccess:\n  rate_limit:\n    messages: 0\n"
      "channels:\n  email:\n    replies_per_hour: 10000\n";
  if (poll) {
    yaml += fmt::format(
        "    poll_interval_s: {}\n    imap:\n      host: 127.0.0.1\n"
        "      idle: false\n",
        kPollInterval);
  }
  return yaml;
}

// ---- Mail ----

// A plain question from `from` to the bot, as the integration tests write it.
std::string question(const std::string& from, const std::string& subject, const std::string& body,
                     const std::string& id) {
  return "From: " + from + "\nTo: bot@parley.test\nSubject: " + subject +
         "\nDate: Sun, 06 Dec 2026 12:00:00 +0000\nMessage-ID: <" + id +
         ">\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n" + body + "\n";
}

std::string from_header(const parley::testing::MailUser& u) {
  std::string name = u.name;
  name[0] = static_cast<char>(name[0] - 'a' + 'A');
  return name + " <" + u.address + ">";
}

// The replies in `user`'s INBOX to a mail whose Message-ID starts with `prefix`.
size_t replies_to(const MailStack& mail, const std::string& user, const std::string& prefix) {
  size_t n = 0;
  for (const MailMessage& m : mail.messages(user)) {
    if (m.header("In-Reply-To").starts_with("<" + prefix)) ++n;
  }
  return n;
}

// Waits until alice holds `want` replies to mails whose ids start with `prefix`; false after
// kReplyWait without a new one.
bool wait_replies(const MailStack& mail, const std::string& prefix, size_t want) {
  size_t seen = 0;
  auto last_change = SteadyClock::now();
  for (;;) {
    const size_t n = replies_to(mail, "alice", prefix);
    if (n >= want) return true;
    if (n != seen) {
      seen = n;
      last_change = SteadyClock::now();
    } else if (SteadyClock::now() - last_change >= kReplyWait) {
      note("{}: {} of {} replies in alice's mailbox after {} s without a new one", prefix, n, want,
           kReplyWait.count());
      return false;
    }
    std::this_thread::sleep_for(kMailPoll);
  }
}

// ---- Groups ----

struct Context {
  Paths paths;
  Sizes sizes;
  fs::path dir;
  std::unique_ptr<LlmFake> llm;
  std::unique_ptr<MailStack> mail;
  std::mt19937_64 rng{kSeed};
  bool all_ok = true;
};

struct StoredLatency {
  std::vector<double> ms;  // sorted: LMTP delivery done → the row seen
  double deliver_ms_max = 0;
  double gap_ms_mean = 0;
};

// `n` mails from alice, one at a time, each after `gap()` from the previous one's row; ids
// `<prefix>-<i>@kIdDomain`.
template <typename Gap>
StoredLatency stored_latency(Context& ctx, Parley& parley, const std::string& prefix, size_t n,
                             Gap gap) {
  StoredLatency r;
  double gaps = 0;
  for (size_t i = 0; i < n; ++i) {
    const SteadyClock::duration pause = gap();
    gaps += millis(pause);
    std::this_thread::sleep_for(pause);
    const std::string id = fmt::format("{}-{}@{}", prefix, i, kIdDomain);
    const std::string raw =
        question(from_header(MailStack::alice()), fmt::format("{} {}", prefix, i),
                 fmt::format("Question {} of the {} group?", i, prefix), id);
    const auto start = SteadyClock::now();
    ctx.mail->deliver("bot", raw, MailStack::alice().address);
    const auto delivered = SteadyClock::now();
    r.deliver_ms_max = std::max(r.deliver_ms_max, millis(delivered - start));
    const auto at = parley.db().wait_stored(id, kStoredWait);
    if (!at) {
      throw BenchError(fmt::format("{}: mail {} not stored after {} s; {} ends:\n{}", prefix, i + 1,
                                   kStoredWait.count(), parley.log().filename().string(),
                                   tail(parley.log())));
    }
    r.ms.push_back(millis(*at - delivered));
  }
  std::sort(r.ms.begin(), r.ms.end());
  r.gap_ms_mean = n > 0 ? gaps / static_cast<double>(n) : 0;
  return r;
}

void report_latency(Report& report, const std::string& group, const StoredLatency& r) {
  report.add(fmt::format("email_{}_samples", group), static_cast<double>(r.ms.size()), "mails", 0);
  report.add(fmt::format("email_{}_stored_p50_ms", group), percentile_sorted(r.ms, 0.5), "ms", 2);
  report.add(fmt::format("email_{}_stored_p99_ms", group), percentile_sorted(r.ms, 0.99), "ms", 2);
}

void bench_idle(Context& ctx, Report& report) {
  Parley parley(ctx.paths, ctx.dir, "parley-idle", *ctx.llm, *ctx.mail, parley_yaml(false));
  // A warm-up mail: the first turn opens the LLM's connection and SMTP's.
  (void)stored_latency(ctx, parley, "idle-warmup", 1, [] { return SteadyClock::duration{}; });
  const StoredLatency r = stored_latency(ctx, parley, "idle", ctx.sizes.idle,
                                         [] { return SteadyClock::duration(kIdleGap); });
  if (!wait_replies(*ctx.mail, "idle-", ctx.sizes.idle + 1)) ctx.all_ok = false;
  ctx.all_ok = parley.stop() && ctx.all_ok;
  note(
      "idle: {} mails one at a time ({} ms apart after each was stored): delivery → row p50 "
      "{:.2f} ms, p99 {:.2f} ms, min {:.2f} ms, max {:.2f} ms; the slowest LMTP delivery took "
      "{:.1f} ms; every reply arrived",
      r.ms.size(), kIdleGap.count(), percentile_sorted(r.ms, 0.5), percentile_sorted(r.ms, 0.99),
      r.ms.front(), r.ms.back(), r.deliver_ms_max);
  report_latency(report, "idle", r);
}

void bench_poll(Context& ctx, Report& report) {
  Parley parley(ctx.paths, ctx.dir, "parley-poll", *ctx.llm, *ctx.mail, parley_yaml(true));
  // Stratified phases: the interval cut into as many equal slices as mails, one pause drawn in
  // each slice, in shuffled order. Pure draws from a few samples left the mean pause up to half a
  // second off the interval's middle, and the figures with it.
  const size_t n = ctx.sizes.poll;
  std::vector<size_t> slices(n);
  for (size_t i = 0; i < n; ++i) slices[i] = i;
  std::shuffle(slices.begin(), slices.end(), ctx.rng);
  std::uniform_real_distribution<double> within(0.0, 1.0);
  size_t next = 0;
  const StoredLatency r = stored_latency(ctx, parley, "poll", n, [&] {
    const double fraction =
        (static_cast<double>(slices[next++]) + within(ctx.rng)) / static_cast<double>(n);
    return std::chrono::duration_cast<SteadyClock::duration>(
        std::chrono::duration<double>(fraction * kPollInterval));
  });
  if (!wait_replies(*ctx.mail, "poll-", ctx.sizes.poll)) ctx.all_ok = false;
  ctx.all_ok = parley.stop() && ctx.all_ok;
  double sum = 0;
  for (const double ms : r.ms) sum += ms;
  note(
      "poll: {} mails, each after a pause in [0, {} s) (stratified; mean {:.0f} ms) from the "
      "previous row: delivery → row p50 {:.0f} ms, p99 {:.0f} ms, min {:.0f} ms, max {:.0f} ms, "
      "mean {:.0f} ms (uniform phases would give a mean of {} ms)",
      r.ms.size(), kPollInterval, r.gap_ms_mean, percentile_sorted(r.ms, 0.5),
      percentile_sorted(r.ms, 0.99), r.ms.front(), r.ms.back(),
      sum / static_cast<double>(r.ms.size()), kPollInterval * 500);
  report.add("email_poll_interval_s", kPollInterval, "s", 0);
  report_latency(report, "poll", r);
}

// Maildir counts of alice and carol together.
size_t senders_mail(const MailStack& mail) {
  return mail.messages("alice").size() + mail.messages("carol").size();
}

struct Arrival {
  bool complete = false;
  SteadyClock::time_point last;  // when the bench saw the last one
};

// Waits until alice and carol hold `want` mails between them; gives up after kReplyWait
// without a new one.
Arrival wait_senders_mail(const MailStack& mail, size_t want,
                          const std::function<void()>& each_look = {}) {
  size_t seen = 0;
  auto last_change = SteadyClock::now();
  for (;;) {
    if (each_look) each_look();
    const size_t n = senders_mail(mail);
    const auto now = SteadyClock::now();
    if (n >= want) return {true, now};
    if (n != seen) {
      seen = n;
      last_change = now;
    } else if (now - last_change >= kReplyWait) {
      note("{} of {} mails in alice's and carol's mailboxes after {} s without a new one", n, want,
           kReplyWait.count());
      return {false, now};
    }
    std::this_thread::sleep_for(kMailPoll);
  }
}

void bench_loop(Context& ctx, Report& report) {
  const size_t m = ctx.sizes.burst;
  const std::array<parley::testing::MailUser, 2> senders = {MailStack::alice(), MailStack::carol()};
  std::vector<std::string> burst;
  for (size_t i = 0; i < m; ++i) {
    const auto& from = senders[i % senders.size()];
    burst.push_back(question(from_header(from), fmt::format("Burst {}", i),
                             fmt::format("Burst question {}?", i),
                             fmt::format("burst-{}@{}", i, kIdDomain)));
  }

  // parley's whole loop.
  Parley parley(ctx.paths, ctx.dir, "parley-loop", *ctx.llm, *ctx.mail, parley_yaml(false));
  const size_t before = senders_mail(*ctx.mail);
  const double cpu_before = cpu_ms(parley.pid());
  const auto start = SteadyClock::now();
  for (size_t i = 0; i < m; ++i) {
    ctx.mail->deliver("bot", burst[i], senders[i % senders.size()].address);
  }
  const double deliver_ms = millis(SteadyClock::now() - start);
  std::optional<SteadyClock::time_point> all_stored;
  const std::string like = fmt::format("burst-%@{}", kIdDomain);
  const Arrival loop = wait_senders_mail(*ctx.mail, before + m, [&] {
    if (!all_stored && parley.db().count(like) >= static_cast<int64_t>(m)) {
      all_stored = SteadyClock::now();
    }
  });
  const double parley_cpu = cpu_ms(parley.pid()) - cpu_before;
  ctx.all_ok = parley.stop() && ctx.all_ok;
  const size_t answered =
      replies_to(*ctx.mail, "alice", "burst-") + replies_to(*ctx.mail, "carol", "burst-");
  if (!loop.complete || answered != m) {
    ctx.all_ok = false;
    note("loop: FAILED: {} of {} burst mails answered", answered, m);
  }
  const double loop_ms = millis(loop.last - start);
  note(
      "loop: {} mails delivered back to back in {:.0f} ms, all stored by parley after {} ms, "
      "the last reply in its sender's mailbox after {:.0f} ms; parley CPU {:.0f} ms",
      m, deliver_ms, all_stored ? fmt::format("{:.0f}", millis(*all_stored - start)) : "(never)",
      loop_ms, parley_cpu);

  // The mail stack alone: the same deliveries into bot's INBOX (nobody reads it now), then as
  // many submissions from bot to the senders.
  const size_t stack_before = senders_mail(*ctx.mail);
  const auto stack_start = SteadyClock::now();
  for (size_t i = 0; i < m; ++i) {
    ctx.mail->deliver("bot", burst[i], senders[i % senders.size()].address);
  }
  const auto bot = MailStack::bot();
  for (size_t i = 0; i < m; ++i) {
    const auto& to = senders[i % senders.size()];
    const auto r = ctx.mail->submit(
        bot.name, bot.password, bot.address, {to.address},
        "From: Bot <bot@parley.test>\nTo: " + from_header(to) + "\nSubject: Re: Burst " +
            std::to_string(i) + "\nDate: Sun, 06 Dec 2026 12:00:01 +0000\nMessage-ID: <stack-" +
            std::to_string(i) + "@" + std::string(kIdDomain) + ">\nIn-Reply-To: <burst-" +
            std::to_string(i) + "@" + std::string(kIdDomain) +
            ">\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nok\n");
    if (!r.ok) throw BenchError(fmt::format("stack: submission {} refused: {}", i + 1, r.line));
  }
  const double submitted_ms = millis(SteadyClock::now() - stack_start);
  const Arrival stack = wait_senders_mail(*ctx.mail, stack_before + m);
  if (!stack.complete) {
    ctx.all_ok = false;
    note("stack: FAILED: not every submission arrived");
  }
  const double stack_ms = millis(stack.last - stack_start);
  note(
      "stack: {} LMTP deliveries and {} SMTP submissions by the bench in {:.0f} ms, the last in "
      "its mailbox after {:.0f} ms",
      m, m, submitted_ms, stack_ms);

  const double loop_rate = static_cast<double>(m) / (loop_ms / 1000.0);
  const double stack_rate = static_cast<double>(m) / (stack_ms / 1000.0);
  report.add("email_loop_mails", static_cast<double>(m), "mails", 0);
  report.add("email_loop_wall_ms", loop_ms, "ms", 0);
  report.add("email_loop_mails_per_s", loop_rate, "mail/s", 1);
  report.add("email_loop_parley_cpu_us_per_mail", parley_cpu * 1000.0 / static_cast<double>(m),
             "us", 0);
  report.add("email_stack_wall_ms", stack_ms, "ms", 0);
  report.add("email_stack_mails_per_s", stack_rate, "mail/s", 1);
  report.add("email_loop_vs_stack_ratio", loop_rate / stack_rate, "x", 3);
}

// ---- The corpus ----

enum class Kind { plain, qp_latin1, base64, html, alternative, mixed, quoted, rfc2231 };
constexpr size_t kKinds = 8;
constexpr std::array<std::string_view, kKinds> kKindNames = {
    "plain", "qp-latin1", "base64", "html-only", "alternative", "mixed", "quoted", "rfc2231"};

struct CorpusMail {
  Kind kind = Kind::plain;
  std::string raw;
  std::string message_id;                // without <>
  std::vector<std::string> attachments;  // the names parse_mail should find, in order
};

constexpr std::array<std::string_view, 24> kWordsUtf8 = {
    "the",    "meeting", "tomorrow",   "café",     "naïve",    "Grüße",  "über",   "déjà",
    "vu",     "日本語",  "こんにちは", "Привет",   "ελληνικά", "😀",      "report", "budget",
    "please", "send",    "señor",      "Ångström", "façade",   "résumé", "and",    "for"};
// ISO-8859-1 can say these (written here in UTF-8; latin1() converts).
constexpr std::array<std::string_view, 20> kWordsLatin1 = {
    "le",    "café", "à",      "huit",   "heures", "très", "bientôt", "garçon", "Grüße", "über",
    "señor", "año",  "façade", "résumé", "naïve",  "Øre",  "på",      "söndag", "et",    "vous"};
constexpr std::array<std::string_view, 6> kAttachmentTypes = {
    "application/pdf", "image/png",
    "application/zip", "text/csv",
    "image/jpeg",      "application/vnd.openxmlformats-officedocument.wordprocessingml.document"};
constexpr std::array<std::string_view, 6> kAttachmentExtensions = {"pdf", "png", "zip",
                                                                   "csv", "jpg", "docx"};

// UTF-8 of code points up to U+00FF as ISO-8859-1 bytes.
std::string latin1(std::string_view utf8) {
  std::string out;
  for (size_t i = 0; i < utf8.size(); ++i) {
    const auto b = static_cast<unsigned char>(utf8[i]);
    if (b < 0x80 || i + 1 == utf8.size()) {
      out += static_cast<char>(b);
      continue;
    }
    const auto c = static_cast<unsigned char>(utf8[++i]);
    out += static_cast<char>(((b & 0x1Fu) << 6) | (c & 0x3Fu));
  }
  return out;
}

std::string base64(std::string_view in, size_t line = 76) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t column = 0;
  for (size_t i = 0; i < in.size(); i += 3) {
    const size_t n = std::min<size_t>(3, in.size() - i);
    uint32_t v = 0;
    for (size_t k = 0; k < 3; ++k) {
      v <<= 8;
      if (k < n) v |= static_cast<unsigned char>(in[i + k]);
    }
    for (size_t k = 0; k < 4; ++k) out += k <= n ? kAlphabet[(v >> (18 - 6 * k)) & 63] : '=';
    column += 4;
    if (line > 0 && column >= line && i + 3 < in.size()) {
      out += "\r\n";
      column = 0;
    }
  }
  return out;
}

char hex_digit(unsigned v) { return "0123456789ABCDEF"[v & 15]; }

// Quoted-printable (RFC 2045 §6.7) of text with LF line ends: CRLF lines of at most 76.
std::string quoted_printable(std::string_view text) {
  std::string out;
  size_t column = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      out += "\r\n";
      column = 0;
      continue;
    }
    const bool at_line_end = i + 1 == text.size() || text[i + 1] == '\n';
    std::string piece;
    if ((c >= 33 && c <= 126 && c != '=') || (c == ' ' && !at_line_end)) {
      piece = std::string(1, static_cast<char>(c));
    } else {
      piece = {'=', hex_digit(c >> 4), hex_digit(c)};
    }
    if (column + piece.size() > 75) {
      out += "=\r\n";
      column = 0;
    }
    out += piece;
    column += piece.size();
  }
  return out;
}

// An RFC 2047 header value: `text` (in `charset`) as encoded words of at most ~18 input bytes
// each, never splitting a UTF-8 sequence, folded onto lines of their own.
std::string encoded_words(std::string_view text, std::string_view charset, char encoding) {
  std::string out;
  for (size_t at = 0; at < text.size();) {
    size_t end = std::min(text.size(), at + 18);
    while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0u) == 0x80u) ++end;
    const std::string_view chunk = text.substr(at, end - at);
    std::string word;
    if (encoding == 'B') {
      word = base64(chunk, 0);
    } else {
      for (const char ch : chunk) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == ' ') {
          word += '_';
        } else if (std::isalnum(c) != 0 && c < 0x80) {
          word += static_cast<char>(c);
        } else {
          word += {'=', hex_digit(c >> 4), hex_digit(c)};
        }
      }
    }
    out += fmt::format("{}=?{}?{}?{}?=", out.empty() ? "" : "\r\n ", charset, encoding, word);
    at = end;
  }
  return out;
}

// `percent` of RFC 2231: every byte but letters, digits and a few marks as %XX.
std::string percent_encoded(std::string_view text) {
  std::string out;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if ((std::isalnum(c) != 0 && c < 0x80) || c == '-' || c == '.' || c == '_') {
      out += static_cast<char>(c);
    } else {
      out += {'%', hex_digit(c >> 4), hex_digit(c)};
    }
  }
  return out;
}

class CorpusWriter {
 public:
  explicit CorpusWriter(uint32_t seed) : rng_(seed) {}

  CorpusMail make(size_t n) {
    CorpusMail m;
    m.kind = static_cast<Kind>(n % kKinds);
    m.message_id = fmt::format("corpus-{}@{}", n, kIdDomain);
    switch (m.kind) {
      case Kind::plain:
        m.raw =
            headers(m, "Alice <alice@parley.test>", sentence(kWordsUtf8, 8)) +
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
            crlf(paragraphs(kWordsUtf8, pick(1, 8)));
        break;
      case Kind::qp_latin1:
        m.raw = headers(m,
                        encoded_words(latin1(sentence(kWordsLatin1, 2)), "ISO-8859-1", 'Q') +
                            " <renee@example.test>",
                        encoded_words(latin1(sentence(kWordsLatin1, 7)), "ISO-8859-1", 'Q')) +
                "Content-Type: text/plain; charset=ISO-8859-1\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n" +
                quoted_printable(latin1(paragraphs(kWordsLatin1, pick(1, 6))));
        break;
      case Kind::base64:
        m.raw =
            headers(m, "Kim <kim@example.test>",
                    encoded_words(sentence(kWordsUtf8, 9), "UTF-8", 'B')) +
            "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
            base64(paragraphs(kWordsUtf8, pick(1, 10))) + "\r\n";
        break;
      case Kind::html:
        m.raw = headers(m, "News <news@example.test>", sentence(kWordsUtf8, 6)) +
                "Content-Type: text/html; charset=utf-8\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n" +
                quoted_printable(html(pick(1, 8)));
        break;
      case Kind::alternative: {
        const std::string b = boundary(n, "alt");
        m.raw = headers(m, "Alice <alice@parley.test>", sentence(kWordsUtf8, 5)) +
                "Content-Type: multipart/alternative; boundary=\"" + b + "\"\r\n\r\n" +
                alternative_body(b);
        break;
      }
      case Kind::mixed: {
        const std::string b = boundary(n, "mix");
        const std::string inner = boundary(n, "alt");
        std::string body = "This is a multi-part message in MIME format.\r\n--" + b +
                           "\r\nContent-Type: multipart/alternative; boundary=\"" + inner +
                           "\"\r\n\r\n" + alternative_body(inner);
        const size_t count = pick(1, 3);
        for (size_t i = 0; i < count; ++i) {
          const size_t type = pick(0, kAttachmentTypes.size() - 1);
          const std::string name = fmt::format("{}-{}-{}.{}", sentence(kWordsLatin1, 1), n, i,
                                               kAttachmentExtensions[type]);
          m.attachments.push_back(name);
          body += fmt::format(
              "--{}\r\nContent-Type: {}\r\nContent-Disposition: attachment; filename=\"{}\"\r\n"
              "Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
              b, kAttachmentTypes[type], name, base64(bytes(log_size())));
        }
        m.raw = headers(m, "Alice <alice@parley.test>", "Files: " + sentence(kWordsUtf8, 4)) +
                "Content-Type: multipart/mixed; boundary=\"" + b + "\"\r\n\r\n" + body + "--" + b +
                "--\r\n";
        break;
      }
      case Kind::quoted:
        m.raw =
            headers(m, "Alice <alice@parley.test>", "Re: " + sentence(kWordsUtf8, 5),
                    threading(n)) +
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
            crlf(quoted_history());
        break;
      case Kind::rfc2231: {
        const std::string b = boundary(n, "mix");
        const std::string name = sentence(kWordsUtf8, 3) + fmt::format(" Rechnung März {}.pdf", n);
        m.attachments.push_back(name);
        // Half in one piece (filename*=), half in continuations (filename*0*=, filename*1*=…).
        std::string param;
        const std::string encoded = "UTF-8''" + percent_encoded(name);
        if (n % 2 == 0) {
          param = "filename*=" + encoded;
        } else {
          // Pieces of about 30 characters, never cutting a %XX (a UTF-8 sequence may be cut).
          for (size_t at = 0, i = 0; at < encoded.size(); ++i) {
            size_t end = std::min(encoded.size(), at + 30);
            if (end < encoded.size() && encoded[end - 1] == '%') end -= 1;
            if (end < encoded.size() && end >= 2 && encoded[end - 2] == '%') end -= 2;
            param += fmt::format("{}filename*{}*={}", i == 0 ? "" : ";\r\n ", i,
                                 encoded.substr(at, end - at));
            at = end;
          }
        }
        m.raw = headers(m, "Alice <alice@parley.test>", sentence(kWordsUtf8, 4)) +
                "Content-Type: multipart/mixed; boundary=\"" + b + "\"\r\n\r\n--" + b +
                "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
                crlf(paragraphs(kWordsUtf8, pick(1, 3))) + "\r\n--" + b +
                "\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment;\r\n " +
                param + "\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
                base64(bytes(pick(2'048, 16'384))) + "\r\n--" + b + "--\r\n";
        break;
      }
    }
    return m;
  }

 private:
  size_t pick(size_t lo, size_t hi) { return std::uniform_int_distribution<size_t>(lo, hi)(rng_); }

  // Sizes of 2 KiB to 400 KiB, log-uniform.
  size_t log_size() {
    std::uniform_real_distribution<double> e(std::log(2'048.0), std::log(409'600.0));
    return static_cast<size_t>(std::exp(e(rng_)));
  }

  std::string bytes(size_t n) {
    std::string out(n, '\0');
    for (char& c : out) c = static_cast<char>(rng_() & 0xFFu);
    return out;
  }

  template <size_t N>
  std::string sentence(const std::array<std::string_view, N>& words, size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i) {
      if (i > 0) out += ' ';
      out += words[pick(0, N - 1)];
    }
    return out;
  }

  // `n` paragraphs of 10–80 words wrapped at 72 columns, LF line ends, a blank line between.
  template <size_t N>
  std::string paragraphs(const std::array<std::string_view, N>& words, size_t n) {
    std::string out;
    for (size_t p = 0; p < n; ++p) {
      if (p > 0) out += "\n\n";
      size_t column = 0;
      const size_t count = pick(10, 80);
      for (size_t i = 0; i < count; ++i) {
        const std::string_view w = words[pick(0, N - 1)];
        if (column > 0 && column + w.size() + 1 > 72) {
          out += '\n';
          column = 0;
        } else if (column > 0) {
          out += ' ';
          ++column;
        }
        out += w;
        column += w.size();
      }
      out += '.';
    }
    return out + "\n";
  }

  std::string html(size_t n) {
    std::string out =
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><style>p { margin: 0 }\n"
        "td { padding: 4px }</style></head>\n<body>\n";
    for (size_t i = 0; i < n; ++i) {
      out += "<p>" + sentence(kWordsUtf8, pick(5, 40)) + " &amp; <b>" + sentence(kWordsUtf8, 2) +
             "</b> &lt;3 &eacute;t&eacute;</p>\n";
      if (i % 3 == 1) {
        out += "<ul><li>" + sentence(kWordsUtf8, 3) + "</li><li><a href=\"https://example.test/" +
               std::to_string(i) + "\">" + sentence(kWordsUtf8, 2) + "</a></li></ul>\n";
      }
      if (i % 4 == 2) {
        out += "<table><tr><td>" + sentence(kWordsUtf8, 1) + "</td><td>" +
               std::to_string(pick(1, 99'999)) + " €</td></tr></table>\n";
      }
    }
    return out + "</body></html>\n";
  }

  std::string alternative_body(const std::string& b) {
    const std::string text = paragraphs(kWordsUtf8, pick(1, 5));
    return "--" + b +
           "\r\nContent-Type: text/plain; charset=utf-8\r\n"
           "Content-Transfer-Encoding: quoted-printable\r\n\r\n" +
           quoted_printable(text) + "\r\n--" + b +
           "\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: "
           "base64\r\n\r\n" +
           base64(html(pick(1, 5))) + "\r\n--" + b + "--\r\n";
  }

  std::string threading(size_t n) {
    std::string refs;
    const size_t count = pick(1, 10);
    for (size_t i = 0; i < count; ++i) {
      refs += fmt::format("{}<thread-{}-{}@example.test>", i == 0 ? "" : "\r\n ", n, i);
    }
    return fmt::format("In-Reply-To: <thread-{}-{}@example.test>\r\nReferences: {}\r\n", n,
                       count - 1, refs);
  }

  // A short answer over 100–2,000 quoted lines, nested two or three deep.
  std::string quoted_history() {
    std::string out = paragraphs(kWordsUtf8, pick(1, 2)) + "\n";
    const bool outlook = pick(0, 3) == 0;
    if (outlook) {
      out +=
          "-----Original Message-----\nFrom: Bot <bot@parley.test>\nSent: Saturday, December 5, "
          "2026 9:00 PM\nTo: Alice <alice@parley.test>\nSubject: " +
          sentence(kWordsUtf8, 4) + "\n\n";
    } else {
      out += "On Sat, 5 Dec 2026 at 21:00, Bot <bot@parley.test> wrote:\n";
    }
    const size_t lines = pick(100, 2'000);
    for (size_t i = 0; i < lines; ++i) {
      const size_t depth = outlook ? 0 : 1 + (i * 3 / lines);
      out += std::string(depth, '>') + (depth > 0 ? " " : "") + sentence(kWordsUtf8, pick(0, 12)) +
             "\n";
    }
    return out + "\n-- \nAlice\nSent from my phone\n";
  }

  static std::string boundary(size_t n, std::string_view what) {
    return fmt::format("=_{}_{:06}_bench", what, n);
  }

  static std::string crlf(std::string_view lf) {
    std::string out;
    out.reserve(lf.size() + lf.size() / 40);
    for (const char c : lf) {
      if (c == '\n') out += '\r';
      out += c;
    }
    return out;
  }

  static std::string headers(const CorpusMail& m, const std::string& from,
                             const std::string& subject, const std::string& extra = "") {
    return "Return-Path: <sender@example.test>\r\nDelivered-To: bot@parley.test\r\n"
           "Received: from client.test by mail.parley.test with LMTP; Sun, 06 Dec 2026 12:00:00 "
           "+0000\r\nFrom: " +
           from + "\r\nTo: Bot <bot@parley.test>\r\nSubject: " + subject +
           "\r\nDate: Sun, 06 Dec 2026 12:00:00 +0000\r\nMessage-ID: <" + m.message_id + ">\r\n" +
           extra + "MIME-Version: 1.0\r\n";
  }

  std::mt19937_64 rng_;
};

// What parse_mail found, against what was written; empty when it is right.
std::string misread(const CorpusMail& m, const email::ParsedMail& p) {
  if (p.message_id != m.message_id) return fmt::format("Message-ID '{}'", p.message_id);
  if (p.text.empty() && p.full_text.empty()) return "no text";
  if (p.subject.empty() || p.subject.find("=?") != std::string::npos) {
    return fmt::format("subject '{}'", p.subject);
  }
  if (p.attachments.size() != m.attachments.size()) {
    return fmt::format("{} attachments, not {}", p.attachments.size(), m.attachments.size());
  }
  for (size_t i = 0; i < m.attachments.size(); ++i) {
    if (p.attachments[i].name != m.attachments[i]) {
      return fmt::format("attachment '{}', not '{}'", p.attachments[i].name, m.attachments[i]);
    }
  }
  if (m.kind == Kind::html && !p.text_from_html) return "HTML not read as HTML";
  return {};
}

// Lines in `bytes`, by memchr: what touching every byte once costs.
size_t count_lines(std::string_view bytes) {
  size_t n = 0;
  const char* p = bytes.data();
  const char* const end = p + bytes.size();
  while (p < end) {
    const void* nl = std::memchr(p, '\n', static_cast<size_t>(end - p));
    if (nl == nullptr) break;
    ++n;
    p = static_cast<const char*>(nl) + 1;
  }
  return n;
}

void bench_parse(Context& ctx, Report& report) {
  const size_t n = ctx.sizes.corpus;
  CorpusWriter writer(kSeed);
  std::vector<CorpusMail> corpus;
  corpus.reserve(n);
  size_t bytes = 0;
  std::array<size_t, kKinds> kind_bytes{};
  size_t largest = 0;
  for (size_t i = 0; i < n; ++i) {
    corpus.push_back(writer.make(i));
    bytes += corpus.back().raw.size();
    kind_bytes[static_cast<size_t>(corpus.back().kind)] += corpus.back().raw.size();
    largest = std::max(largest, corpus.back().raw.size());
  }

  // The untimed round: every result checked.
  size_t wrong = 0;
  for (const CorpusMail& m : corpus) {
    const auto parsed = email::parse_mail(m.raw, kMaxMessageBytes);
    const std::string why = parsed ? misread(m, *parsed) : parsed.error().message;
    if (!why.empty() && ++wrong <= 5) {
      note("parse: {} ({}) misread: {}", m.message_id, kKindNames[static_cast<size_t>(m.kind)],
           why);
    }
  }
  if (wrong > 0) {
    ctx.all_ok = false;
    note("parse: FAILED: {} of {} mails misread", wrong, n);
  }

  std::vector<double> us;
  us.reserve(n * ctx.sizes.parse_rounds);
  double parse_total_us = 0;
  for (size_t round = 0; round < ctx.sizes.parse_rounds; ++round) {
    for (const CorpusMail& m : corpus) {
      const auto start = SteadyClock::now();
      const auto parsed = email::parse_mail(m.raw, kMaxMessageBytes);
      const double t = micros(SteadyClock::now() - start);
      if (!parsed) ctx.all_ok = false;
      us.push_back(t);
      parse_total_us += t;
    }
  }
  std::sort(us.begin(), us.end());

  size_t lines = 0;
  double scan_total_us = 0;
  for (size_t round = 0; round < ctx.sizes.parse_rounds; ++round) {
    const auto start = SteadyClock::now();
    for (const CorpusMail& m : corpus) lines += count_lines(m.raw);
    scan_total_us += micros(SteadyClock::now() - start);
  }

  std::string mix;
  for (size_t k = 0; k < kKinds; ++k) {
    mix += fmt::format("{}{} {:.0f} KiB", k == 0 ? "" : ", ", kKindNames[k],
                       static_cast<double>(kind_bytes[k]) / 1024.0);
  }
  note(
      "parse: {} mails, {:.1f} MiB in all (the largest {:.0f} KiB; {}), {} timed rounds; the "
      "memchr scan counted {} lines",
      n, static_cast<double>(bytes) / 1024.0 / 1024.0, static_cast<double>(largest) / 1024.0, mix,
      ctx.sizes.parse_rounds, lines / ctx.sizes.parse_rounds);

  const auto rounds = static_cast<double>(ctx.sizes.parse_rounds);
  const double parse_mb_s = static_cast<double>(bytes) * rounds / parse_total_us;  // B/us = MB/s
  const double scan_mb_s = static_cast<double>(bytes) * rounds / scan_total_us;
  report.add("parse_mails", static_cast<double>(n), "mails", 0);
  report.add("parse_p50_us", percentile_sorted(us, 0.5), "us", 1);
  report.add("parse_p99_us", percentile_sorted(us, 0.99), "us", 1);
  report.add("parse_mean_us", parse_total_us / static_cast<double>(us.size()), "us", 1);
  report.add("parse_mb_per_s", parse_mb_s, "MB/s", 1);
  report.add("scan_mb_per_s", scan_mb_s, "MB/s", 0);
  report.add("parse_vs_scan_ratio", parse_mb_s / scan_mb_s, "x", 5);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  bool json_out = false;
  bool keep = false;
  Paths paths;
  std::optional<size_t> idle_n;
  std::optional<size_t> poll_n;
  std::optional<size_t> burst;
  std::optional<size_t> corpus;
  CLI::App app{
      "parley's email channel against a real Dovecot and Exim: delivery to storage with IDLE "
      "and with polling, mails per second through the whole loop beside the mail stack's own "
      "rate, parse time per mail beside a memchr scan"};
  app.add_flag("--quick", quick, "Small sizes for a smoke run (about 30 s)");
  app.add_flag("--json", json_out, "Print the figures as one JSON object");
  app.add_flag("--keep", keep, "Keep the temporary directory (logs, databases)");
  app.add_option("--parley", paths.parley, "The parley executable")->capture_default_str();
  app.add_option("--fake-server", paths.fake, "The fake_llm_server executable")
      ->capture_default_str();
  app.add_option("--idle", idle_n, "Timed mails with IDLE")->check(CLI::PositiveNumber);
  app.add_option("--poll", poll_n, "Timed mails with polling (about 5 s each)")
      ->check(CLI::PositiveNumber);
  app.add_option("--burst", burst, "Mails at once (loop)")->check(CLI::PositiveNumber);
  app.add_option("--corpus", corpus, "Mails to parse")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  (void)std::signal(SIGPIPE, SIG_IGN);  // a child's closed pipe is an error, not our end

  try {
    check_executable(paths.parley, "parley", "--parley");
    check_executable(paths.fake, "fake_llm_server", "--fake-server");
    TempDir dir("bench_email.", {}, keep);  // before ctx: outlives the processes in it
    Context ctx;
    ctx.paths = paths;
    ctx.sizes = quick ? kQuickSizes : kFullSizes;
    if (idle_n) ctx.sizes.idle = *idle_n;
    if (poll_n) ctx.sizes.poll = *poll_n;
    if (burst) ctx.sizes.burst = *burst;
    if (corpus) ctx.sizes.corpus = *corpus;
    ctx.dir = dir.path();
    note("bench_email: {} run, {} hardware threads, in {}", quick ? "quick" : "full",
         std::thread::hardware_concurrency(), ctx.dir.string());
    const auto start = SteadyClock::now();
    ctx.llm = std::make_unique<LlmFake>(ctx.paths, ctx.dir);
    ctx.mail = std::make_unique<MailStack>();
    note("bench_email: mail stack up in {:.0f} ms (IMAP {}, SMTP {}, LMTP {})",
         millis(SteadyClock::now() - start), ctx.mail->imap_port(), ctx.mail->smtp_port(),
         ctx.mail->lmtp_port());

    Report report(json_out);
    bench_idle(ctx, report);
    bench_poll(ctx, report);
    bench_loop(ctx, report);
    // MailStack reports a failure to stop through GoogleTest's ad hoc result (no test runs here).
    ctx.mail.reset();
    if (::testing::UnitTest::GetInstance()->ad_hoc_test_result().Failed()) {
      ctx.all_ok = false;
      note("bench_email: the mail stack did not stop cleanly");
    }
    ctx.llm->stop();
    bench_parse(ctx, report);
    report.finish();
    note("bench_email: done in {:.1f} s{}", millis(SteadyClock::now() - start) / 1000.0,
         keep ? fmt::format("; kept {}", ctx.dir.string()) : "");
    return ctx.all_ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "bench_email: " << e.what() << '\n';
    return 1;
  }
}
