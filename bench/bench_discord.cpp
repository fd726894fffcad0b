// bench_discord: parley's Discord channel end to end — the real `parley run` binary, a process
// of its own, against FakeDiscord (tests/fakes/fake_discord.h: REST and gateway on 127.0.0.1,
// served by a thread of this process) and fake_llm_server (a third process, answering "ok" at
// once: an instant LLM). Only 127.0.0.1; every process and fake started here is stopped here
// (parley with SIGTERM, then SIGKILL), on failures too; children die with the bench
// (PR_SET_PDEATHSIG) should it be killed.
//
// parley runs as the integration tests start it (tests/integration/discord_test.cpp):
// DISCORD_TOKEN (the fake's), PARLEY_DISCORD_API_BASE (the fake's REST base), XDG_RUNTIME_DIR (the
// bench's temporary directory, for the one-process-per-token lock), `--console off`, the LLM
// through PARLEY_LLM_BASE_URL / _MODEL / _API_KEY, its own --config and --db; every other
// PARLEY_*, DISCORD_*, provider key and proxy variable is removed from its environment. Every
// message comes from a new Discord user (the access policy limits messages per user per minute,
// and the HTTP baseline's load generator also uses a new user per message).
//
// Groups, in this order:
//   latency     one parley, one shard; the fake's REST limits lifted (every route 1,000,000 per
//               1 s window, no global limit). After a warm-up round (one message per channel,
//               which also teaches parley the fake's buckets) and a quiet second, --sequential
//               mentions one at a time in turn over the channels: the time from inject_message
//               (MESSAGE_CREATE) to the arrival at the fake of the reply's POST
//               /channels/{id}/messages (its DiscordRequest::arrival, so the fake's answer to that
//               POST and the bench's wake-up are not counted). The fake's own part that remains
//               inside: building and writing the MESSAGE_CREATE frame (inject_message's call,
//               fake_inject_p50_us, plus the write on the fake's io thread) and Beast reading
//               the POST before the handler stamps its arrival. Messages start at least kPace
//               apart: each costs parley two requests (the typing POST and the reply), and
//               parley's own REST limiter allows 50 a second (Discord's global limit, not
//               configurable), so faster than one in 40 ms the figure would be the limiter's
//               wait rather than parley's. Beside it (http_p50_ms, http_p99_ms): as many
//               messages one at a time through parley's HTTP channel, client-observed (e2e_load,
//               bench_e2e's load generator, one connection). parley's CPU time per message in
//               both (*_seq_cpu_us_per_msg; /proc counts in 10 ms ticks) is what a message costs
//               it when no limiter wait is shared by many.
//   throughput  the same parley and fake: --channels channels in parallel, --messages in all, in
//               rounds — one message into every channel, the next round once every reply of
//               this one was created (each channel has one message in flight and finds its lane
//               idle; the bench reads the fake's record once a round): messages per second from
//               the first MESSAGE_CREATE to the last created reply (discord_msgs_per_s). Beside
//               it, through the same parley in the same run, its HTTP channel (POST
//               /v1/messages) with e2e_load: --channels keep-alive connections, each sending its
//               next message when its answer is in, the same number of messages and warm-up
//               (http_msgs_per_s), and the ratio. Lifting the fake's limits does not lift
//               parley's: its REST client keeps its own global 50 requests a second, so the
//               Discord figure cannot exceed 25 messages a second for long (typing + reply
//               each); discord_rest_req_per_s shows how close it runs to that. parley's CPU time
//               per message, both ways, says what the channel itself costs.
//   shards      parley's VmRSS once every shard is READY (and kSettle later, after the
//               GUILD_CREATEs) with `channels.discord.shards: {ids: [0], count: 1}` and with
//               {ids: [0..N-1], count: N} (N = --shards, 32), each a fresh process, database and
//               fake with the same N guilds (one per shard of N; with one shard, shard 0 gets all
//               of them) and session_start_limit.max_concurrency N, so that all N IDENTIFY at
//               once. rss_per_shard_kib = (RSS with N − RSS with 1) / (N − 1), the median of
//               Sizes::rss_runs pairs; rss_1_shard_spread_kib is how much the one-shard RSS
//               varies between those runs (the noise under the difference). A shard costs
//               parley a few tens of KiB while that noise is 150–200 KiB: with 8 shards the
//               difference / 7 came out anywhere from −40 to +37 KiB, hence 32 (±5 KiB).
//   burst       a fresh parley and a fake with Discord's limits as the fake has them by default
//               (checked here): POST /channels/{id}/messages 5 per 1 s window per channel, other
//               routes 50 per 1 s per major id, global 50 per 1 s. Sizes::burst_channels
//               channels, Sizes::burst_per_channel mentions each (1,000 = 100 × 10 in the full
//               run), from a new user each. The lanes merge a burst into one conversation (a
//               message arriving while its channel's turn runs waits for the debounce and is
//               answered with the others, in one reply), which would leave far fewer than 1,000
//               replies and turn the burst into a test of typing POSTs (parley sends one per
//               message, merged or not). So the messages go in rounds: round k puts the k-th
//               message into every channel, the next round kBurstGap later, so that each message
//               finds its lane idle and is a turn of its own. With an instant LLM a round's 100
//               turns take parley ~150 ms on two busy cores (rounds 100 ms apart overlapped and
//               merged up to half the messages), hence 500 ms: 4.5 s of injection, still 200
//               messages a second against the ~25 a second the limits let out, ~40 s of
//               sending. What parley answered is counted all the same (a loaded machine can still
//               merge some), and the ideal is computed from it:
//                 parts = created messages, turns = those replying to a message (first parts);
//                 R = the requests parley sent up to the last reply (the parts, and the typing
//                 POSTs it did not drop: one is queued when a turn starts, and dropped when the
//                 turn ends before its turn to be sent comes), all under the global limit: in
//                 fixed 1 s windows of
//                 50, the last of them goes out (ceil(R / 50) − 1) s after the first at best;
//                 a channel's p parts at 5 per window need (ceil(p / 5) − 1) s; the last
//                 message is injected (per_channel − 1) × kBurstGap after the first;
//                 ideal = the largest of the three (zero processing time, the first request at
//                 the first injection).
//               burst_total_s runs from the first injection to the arrival of the last reply's
//               POST; burst_vs_ideal = total / ideal. rate_limit_violations: requests the fake
//               saw while their bucket or the global window was exhausted (a client that honours
//               the headers has none). Typing POSTs beyond one per turn, or arriving in a
//               channel after its last reply (Discord would show "typing…" for ~10 s after the
//               answer), are noted.
//
// Figures go to stdout as `name value unit` lines (or one JSON object with --json); context to
// stderr. Times are printed, never asserted. --quick shrinks every size for a CI smoke run.
// Exit 1 when a message went unanswered or a process misbehaved.
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bench_process.h"
#include "bench_report.h"
#include "bench_util.h"
#include "fakes/fake_discord.h"

#ifndef PARLEY_BINARY
#define PARLEY_BINARY ""
#endif
#ifndef PARLEY_FAKE_LLM_SERVER
#define PARLEY_FAKE_LLM_SERVER ""
#endif
#ifndef PARLEY_E2E_LOAD
#define PARLEY_E2E_LOAD ""
#endif

namespace {

namespace fs = std::filesystem;
namespace fakes = parley::fakes;
namespace route = parley::fakes::discord_route;
using nlohmann::json;
using namespace parley::bench;  // the benches' own kit: bench_report.h, bench_util.h
using std::chrono::milliseconds;
using std::chrono::seconds;

// ---- Parameters ----

constexpr std::string_view kModel = "bench/model";
constexpr auto kReplyWait = seconds(60);        // a reply, or any progress, before giving up
constexpr auto kReadyWait = seconds(30);        // every shard READY
constexpr auto kSettle = milliseconds(1000);    // shards: after READY, before the RSS
constexpr auto kPace = milliseconds(50);        // latency: from one message's start to the next
constexpr auto kBurstGap = milliseconds(500);   // burst: between rounds
constexpr auto kBurstQuiet = seconds(3);        // burst: nothing new for this long: done
constexpr auto kBurstPoll = milliseconds(100);  // burst: how often the bench looks
constexpr int kGlobalPerWindow = 50;            // Discord's (and the fake's) global limit
constexpr auto kWindow = seconds(1);            // … per window of this length
constexpr int kCreatePerWindow = 5;             // the fake's default for creating messages
constexpr size_t kHttpSeqWarmup = 8;            // latency: HTTP messages before the timed ones
constexpr int kLiftedLimit = 1'000'000;         // latency/throughput: no bucket binds

// Every size that --quick shrinks.
struct Sizes {
  size_t channels;           // throughput: channels in parallel (and HTTP connections)
  size_t messages;           // throughput: timed messages, each way
  size_t sequential;         // latency: messages one at a time
  int shards;                // shards: the run with many (against one)
  int rss_runs;              // shards: pairs of runs, the median taken
  size_t burst_channels;     // burst
  size_t burst_per_channel;  // burst
};

constexpr Sizes kFullSizes{.channels = 32,
                           .messages = 1'000,
                           .sequential = 200,
                           .shards = 32,
                           .rss_runs = 3,
                           .burst_channels = 100,
                           .burst_per_channel = 10};
constexpr Sizes kQuickSizes{.channels = 8,
                            .messages = 40,
                            .sequential = 20,
                            .shards = 2,
                            .rss_runs = 1,
                            .burst_channels = 10,
                            .burst_per_channel = 3};

// ---- The programs ----

struct Paths {
  std::string parley = PARLEY_BINARY;
  std::string fake = PARLEY_FAKE_LLM_SERVER;
  std::string load = PARLEY_E2E_LOAD;
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

// `parley run` against `discord` and `llm`, with `yaml` as its parley.yaml and a database of its
// own (both named after it in `dir`), up to its ready line.
class Parley {
 public:
  Parley(const Paths& paths, const fs::path& dir, const std::string& name, const LlmFake& llm,
         const fakes::FakeDiscord& discord, const std::string& yaml)
      : log_(dir / (name + ".log")),
        process_(name, spec(paths, dir, name, llm, discord, yaml, log_)) {
    try {
      const auto ready = process_.wait_line("ready in");
      std::smatch m;
      if (std::regex_search(ready.text, m,
                            std::regex(R"(http://127\.0\.0\.1:(\d+)/v1/messages)"))) {
        port_ = static_cast<uint16_t>(std::stoul(m[1].str()));
      }
      if (port_ == 0) throw BenchError(fmt::format("{}: no HTTP port in '{}'", name, ready.text));
      if (ready.text.find("discord (token") == std::string::npos) {
        throw BenchError(fmt::format("{}: the Discord channel is not on: '{}'", name, ready.text));
      }
    } catch (const BenchError& e) {
      throw BenchError(fmt::format("{}; its log ends:\n{}", e.what(), tail(log_)));
    }
  }

  [[nodiscard]] pid_t pid() const { return process_.pid(); }
  [[nodiscard]] uint16_t port() const { return port_; }
  [[nodiscard]] const fs::path& log() const { return log_; }

  // SIGTERM; a non-zero exit is reported (the figures are kept).
  bool stop() {
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
                    const LlmFake& llm, const fakes::FakeDiscord& discord, const std::string& yaml,
                    const fs::path& log) {
    const fs::path config = dir / (name + ".yaml");
    write_file(config, yaml);
    Spawn s;
    s.argv = {
        paths.parley, "--config", config.string(), "--db",      (dir / (name + ".db")).string(),
        "run",        "--http",   "127.0.0.1:0",   "--console", "off",
        "--grace",    "2"};
    s.env = clean_environment();
    s.env.push_back("PARLEY_LLM_BASE_URL=" + llm.base_url());
    s.env.push_back("PARLEY_LLM_MODEL=" + std::string(kModel));
    s.env.push_back("PARLEY_LLM_API_KEY=sk-bench-0123456789abcdef");
    s.env.push_back("DISCORD_TOKEN=" + discord.token());
    s.env.push_back("PARLEY_DISCORD_API_BASE=" + discord.api_base());
    s.env.push_back("XDG_RUNTIME_DIR=" + dir.string());
    s.cwd = dir;
    s.log = log;
    return s;
  }

  fs::path log_;  // before process_: its spec names it
  Process process_;
  uint16_t port_ = 0;
};

// parley.yaml: quiet logs, and the shard set when given (count 0: `auto`).
std::string parley_yaml(int shard_count) {
  std::string yaml = "log:\n  level: warn\n";
  if (shard_count > 0) {
    std::string ids;
    for (int i = 0; i < shard_count; ++i) ids += (i == 0 ? "" : ", ") + std::to_string(i);
    yaml += fmt::format("channels:\n  discord:\n    shards: {{ids: [{}], count: {}}}\n", ids,
                        shard_count);
  }
  return yaml;
}

// ---- The load generator ----

struct LoadResult {
  size_t sent = 0;
  size_t ok = 0;
  double wall_ms = 0;
  double wall_from_connect_ms = 0;
  double connected_ms = 0;
  size_t in_flight_peak = 0;
  std::vector<double> latency_us;   // sorted
  std::vector<double> turn_ms;      // sorted
  std::vector<double> overhead_us;  // sorted; latency − llm_latency_ms (empty: no such field)
  std::string failures;             // "what ×N; …"
};

LoadResult run_load(const Paths& paths, const fs::path& dir, const std::vector<std::string>& args,
                    int timeout_s) {
  Spawn s;
  s.argv = {paths.load, "--timeout-s", std::to_string(timeout_s)};
  s.argv.insert(s.argv.end(), args.begin(), args.end());
  s.env = clean_environment();
  s.log = dir / "e2e_load.log";
  Process p("e2e_load", s);
  const auto code = p.wait_exit(std::chrono::seconds(timeout_s + 30));
  if (!code) throw BenchError("e2e_load did not finish in time");
  const json j = json::parse(p.stdout_text(), nullptr, false);
  if (!j.is_object() || !j.contains("ok")) {
    throw BenchError(
        fmt::format("e2e_load (exit {}) printed no result; its log ends:\n{}", *code, tail(s.log)));
  }
  LoadResult r;
  r.sent = j["sent"].get<size_t>();
  r.ok = j["ok"].get<size_t>();
  r.wall_ms = j["wall_ms"].get<double>();
  r.wall_from_connect_ms = j["wall_from_connect_ms"].get<double>();
  r.connected_ms = j["connected_ms"].get<double>();
  r.in_flight_peak = j["in_flight_peak"].get<size_t>();
  r.latency_us = j["latency_us"].get<std::vector<double>>();
  r.turn_ms = j["turn_ms"].get<std::vector<double>>();
  r.overhead_us = j["overhead_us"].get<std::vector<double>>();
  std::sort(r.latency_us.begin(), r.latency_us.end());
  std::sort(r.turn_ms.begin(), r.turn_ms.end());
  std::sort(r.overhead_us.begin(), r.overhead_us.end());
  for (const auto& [what, n] : j["failures"].items()) {
    r.failures += fmt::format("{}{} x{}", r.failures.empty() ? "" : "; ", what, n.get<size_t>());
  }
  return r;
}

std::vector<std::string> parley_load_args(uint16_t port, size_t clients, size_t messages,
                                          size_t warmup, const std::string& prefix) {
  return {"--mode",     "parley",
          "--port",     std::to_string(port),
          "--clients",  std::to_string(clients),
          "--messages", std::to_string(messages),
          "--warmup",   std::to_string(warmup),
          "--prefix",   prefix};
}

// ---- Discord: the fake's guilds and the messages injected ----

fakes::FakeDiscordChannel text_channel(const std::string& name) {
  fakes::FakeDiscordChannel c;
  c.name = name;
  return c;
}

// A guild with `n` text channels (`id` empty: a fresh snowflake).
fakes::FakeDiscordGuild guild_with(size_t n, const std::string& name, std::string id = "") {
  fakes::FakeDiscordGuild g;
  g.id = std::move(id);
  g.name = name;
  for (size_t i = 0; i < n; ++i) g.channels.push_back(text_channel(fmt::format("c{}", i)));
  return g;
}

// One guild of `channels` channels; no REST limit binds (every route 1,000,000 a window, none
// global), so that what is measured is parley, not the fake's buckets.
fakes::FakeDiscord::Options lifted_options(size_t channels) {
  fakes::FakeDiscord::Options o;
  o.guilds = {guild_with(channels, "bench")};
  o.rate_limits.clear();
  o.default_rate_limit = fakes::FakeRateLimit{kLiftedLimit, kWindow, ""};
  o.global_limit = 0;
  return o;
}

std::vector<std::string> channel_ids(const fakes::FakeDiscordGuild& g) {
  std::vector<std::string> out;
  for (const auto& c : g.channels) out.push_back(c.id);
  return out;
}

// A message from a new user (the fake gives it an id) that mentions the bot: answered by the
// default `respond_to`, content included without the MESSAGE_CONTENT intent.
fakes::FakeDiscordMessage mention(const std::string& bot_id, const std::string& guild,
                                  const std::string& channel, size_t n) {
  fakes::FakeDiscordMessage m;
  m.guild_id = guild;
  m.channel_id = channel;
  m.author = fakes::FakeDiscordUser{"", fmt::format("user{}", n), false, std::nullopt};
  m.content = fmt::format("<@{}> hello {}", bot_id, n);
  m.mentions = {fakes::FakeDiscordUser{bot_id, "parley", true, std::nullopt}};
  return m;
}

// The message a reply (part) answers: message_reference.message_id, "" for none.
std::string replied_to(const json& message_reference) {
  if (!message_reference.is_object()) return {};
  const auto it = message_reference.find("message_id");
  return it != message_reference.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string replied_to(const fakes::DiscordRequest& request) {
  const json body = json::parse(request.body, nullptr, false);
  return body.is_object() && body.contains("message_reference")
             ? replied_to(body["message_reference"])
             : std::string();
}

// ---- Groups ----

struct Context {
  Paths paths;
  Sizes sizes;
  fs::path dir;
  std::unique_ptr<LlmFake> llm;
  bool all_ok = true;
};

// The dispatches the session of shard 0 has had: one per MESSAGE_CREATE injected and one per
// message parley creates (the fake echoes those, as Discord does). A cheap hint that replies may
// be in: created_messages() and requests() copy all that the fake recorded, under its lock, and
// wait_created_messages() calls the former on every change of the fake's state — which cost this
// bench a third of a core in the throughput group and delayed the fake's answers to parley.
int64_t dispatches(const fakes::FakeDiscord& d) {
  const auto s = d.session(0);
  return s ? s->seq : 0;
}

// Waits until `want` dispatches (see dispatches()); throws after kReplyWait.
void wait_dispatches(const fakes::FakeDiscord& d, int64_t want, const std::string& what) {
  if (!d.wait_for([&] { return dispatches(d) >= want; }, kReplyWait)) {
    throw BenchError(fmt::format("{}: no reply in {} s", what, kReplyWait.count()));
  }
}

struct LoopResult {
  size_t answered = 0;
  SteadyClock::time_point start;
  SteadyClock::time_point end;
  [[nodiscard]] double wall_ms() const { return millis(end - start); }
};

// `total` messages over `channels` in rounds: one message into each channel, the next round as
// soon as every reply of this one was created — so each channel has one message in flight and
// finds its lane idle (nothing is merged), and the bench copies the fake's record once a round.
LoopResult rounds(fakes::FakeDiscord& d, const std::string& bot_id, const std::string& guild,
                  const std::vector<std::string>& channels, size_t total, size_t& counter) {
  size_t seen = d.created_messages().size();
  size_t sent = 0;
  LoopResult r;
  r.start = SteadyClock::now();
  while (sent < total) {
    const size_t n = std::min(channels.size(), total - sent);
    const int64_t before = dispatches(d);
    std::set<std::string> waiting;
    for (size_t i = 0; i < n; ++i) {
      waiting.insert(d.inject_message(mention(bot_id, guild, channels[i], counter++)));
    }
    sent += n;
    int64_t want = before + 2 * static_cast<int64_t>(n);  // the injections and their echoes
    while (!waiting.empty()) {
      wait_dispatches(d, want, fmt::format("{} of {} answered", r.answered, total));
      const auto created = d.created_messages();
      for (size_t i = seen; i < created.size(); ++i) {
        if (waiting.erase(replied_to(created[i].message_reference)) != 0) ++r.answered;
      }
      seen = created.size();
      want = dispatches(d) + static_cast<int64_t>(waiting.size());
    }
  }
  r.end = SteadyClock::now();
  return r;
}

struct LatencyResult {
  std::vector<double> reply_ms;   // sorted: inject → the reply's POST arrives at the fake
  std::vector<double> typing_ms;  // sorted: inject → the typing POST arrives at the fake
  std::vector<double> inject_us;  // sorted: inject_message's own call (the fake's part)
  double slowest_ms = 0;
  size_t slowest = 0;            // which message (1-based)
  double slowest_typing_ms = 0;  // its typing POST
};

// `n` messages one at a time, in turn over `channels`, starting at least kPace apart.
LatencyResult sequential(fakes::FakeDiscord& d, const std::string& bot_id, const std::string& guild,
                         const std::vector<std::string>& channels, size_t n, size_t& counter) {
  LatencyResult r;
  size_t scanned = d.requests().size();
  auto next_start = SteadyClock::now();
  for (size_t i = 0; i < n; ++i) {
    std::this_thread::sleep_until(next_start);
    const std::string& channel = channels[i % channels.size()];
    auto message = mention(bot_id, guild, channel, counter++);
    const int64_t before = dispatches(d);
    const auto t0 = SteadyClock::now();
    next_start = t0 + kPace;
    const std::string id = d.inject_message(std::move(message));
    r.inject_us.push_back(micros(SteadyClock::now() - t0));
    wait_dispatches(d, before + 2, fmt::format("latency: message {}", i + 1));
    const auto requests = d.requests();
    std::optional<SteadyClock::time_point> reply_at;
    std::optional<SteadyClock::time_point> typing_at;
    for (size_t j = scanned; j < requests.size(); ++j) {
      const auto& q = requests[j];
      if (q.major != channel || q.arrival < t0) continue;
      if (q.route == route::kTyping && !typing_at) typing_at = q.arrival;
      if (q.route == route::kCreateMessage && replied_to(q) == id) reply_at = q.arrival;
    }
    scanned = requests.size();
    if (!reply_at) {
      throw BenchError(fmt::format("latency: no reply to message {} among the requests", i + 1));
    }
    r.reply_ms.push_back(millis(*reply_at - t0));
    if (r.reply_ms.back() > r.slowest_ms) {
      r.slowest_ms = r.reply_ms.back();
      r.slowest = i + 1;
      r.slowest_typing_ms = typing_at ? millis(*typing_at - t0) : -1;
    }
    if (typing_at) r.typing_ms.push_back(millis(*typing_at - t0));
  }
  std::sort(r.reply_ms.begin(), r.reply_ms.end());
  std::sort(r.typing_ms.begin(), r.typing_ms.end());
  std::sort(r.inject_us.begin(), r.inject_us.end());
  return r;
}

void bench_latency_throughput(Context& ctx, Report& report) {
  const Sizes& z = ctx.sizes;
  fakes::FakeDiscord d(lifted_options(z.channels));
  const fakes::FakeDiscordGuild guild = d.guilds().at(0);
  const std::vector<std::string> channels = channel_ids(guild);
  const std::string bot_id = d.bot_id();
  Parley parley(ctx.paths, ctx.dir, "parley-throughput", *ctx.llm, d, parley_yaml(0));
  if (!d.wait_ready(0, kReadyWait)) {
    throw BenchError(fmt::format("throughput: shard 0 not READY in time; {} log ends:\n{}",
                                 parley.log().filename().string(), tail(parley.log())));
  }
  size_t counter = 0;

  // Warm-up: a round over the channels (parley learns the fake's buckets, opens connections);
  // then a window with nothing sent, so that parley's global limiter starts the latency
  // messages with an empty window (else its wait, not parley, is what the slowest ones show).
  (void)rounds(d, bot_id, guild.id, channels, channels.size(), counter);
  std::this_thread::sleep_for(kWindow + milliseconds(100));

  // parley's CPU time one message at a time, where no limiter wait is shared by many: what a
  // message costs it on each channel (the throughput figures add the waits of many).
  const double seq_cpu_before = cpu_ms(parley.pid());
  const LatencyResult lat = sequential(d, bot_id, guild.id, channels, z.sequential, counter);
  const double seq_cpu = cpu_ms(parley.pid()) - seq_cpu_before;
  note(
      "latency: {} messages one at a time (at least {} ms apart), instant LLM: inject → reply "
      "POST p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms (message {}, its typing POST after "
      "{:.2f} ms); inject → typing POST p50 {:.2f} ms; the fake's inject_message call p50 {:.0f} "
      "us, p99 {:.0f} us; parley CPU {:.0f} us a message",
      lat.reply_ms.size(), kPace.count(), percentile_sorted(lat.reply_ms, 0.5),
      percentile_sorted(lat.reply_ms, 0.99), lat.slowest_ms, lat.slowest, lat.slowest_typing_ms,
      percentile_sorted(lat.typing_ms, 0.5), percentile_sorted(lat.inject_us, 0.5),
      percentile_sorted(lat.inject_us, 0.99), seq_cpu * 1000.0 / static_cast<double>(z.sequential));
  // The baseline: as many messages one at a time through the HTTP channel (a warm-up round
  // first), client-observed.
  const double http_seq_cpu_before = cpu_ms(parley.pid());
  const LoadResult http_seq =
      run_load(ctx.paths, ctx.dir,
               parley_load_args(parley.port(), 1, z.sequential, kHttpSeqWarmup, "seq"), 300);
  const double http_seq_cpu = cpu_ms(parley.pid()) - http_seq_cpu_before;
  if (http_seq.ok != http_seq.sent || http_seq.latency_us.empty()) {
    ctx.all_ok = false;
    note("latency: http: FAILED: {} of {} ok ({})", http_seq.ok, http_seq.sent, http_seq.failures);
  }
  note(
      "latency: http: {} messages one at a time: p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms; "
      "parley CPU {:.0f} us a message ({} warm-up included)",
      http_seq.ok, percentile_sorted(http_seq.latency_us, 0.5) / 1e3,
      percentile_sorted(http_seq.latency_us, 0.99) / 1e3,
      http_seq.latency_us.empty() ? 0.0 : http_seq.latency_us.back() / 1e3,
      http_seq_cpu * 1000.0 / static_cast<double>(z.sequential + kHttpSeqWarmup), kHttpSeqWarmup);
  std::this_thread::sleep_for(kWindow);

  const size_t requests_before = d.requests().size();
  const double cpu_before = cpu_ms(parley.pid());
  const double bench_cpu_before = cpu_ms(::getpid());
  const LoopResult loop = rounds(d, bot_id, guild.id, channels, z.messages, counter);
  const double discord_cpu = cpu_ms(parley.pid()) - cpu_before;
  const double bench_cpu = cpu_ms(::getpid()) - bench_cpu_before;
  const auto requests = d.requests();
  size_t in_loop = 0;
  size_t typing = 0;
  for (size_t j = requests_before; j < requests.size(); ++j) {
    if (requests[j].arrival < loop.start || requests[j].arrival > loop.end) continue;
    ++in_loop;
    if (requests[j].route == route::kTyping) ++typing;
  }
  const double discord_rate = static_cast<double>(loop.answered) / (loop.wall_ms() / 1000.0);
  const double rest_rate = static_cast<double>(in_loop) / (loop.wall_ms() / 1000.0);
  note(
      "throughput: discord: {} messages over {} channels (one in flight each) in {:.0f} ms; the "
      "fake saw {} requests ({} typing) in that time; parley CPU {:.0f} ms; this bench's own "
      "CPU (the fake's thread and the copies it hands out) {:.0f} ms",
      loop.answered, channels.size(), loop.wall_ms(), in_loop, typing, discord_cpu, bench_cpu);

  const double http_cpu_before = cpu_ms(parley.pid());
  const LoadResult http =
      run_load(ctx.paths, ctx.dir,
               parley_load_args(parley.port(), z.channels, z.messages, z.channels, "http"), 300);
  const double http_cpu = cpu_ms(parley.pid()) - http_cpu_before;
  ctx.all_ok = parley.stop() && ctx.all_ok;
  d.stop();
  if (http.ok != http.sent) {
    ctx.all_ok = false;
    note("throughput: http: FAILED: {} of {} ok ({})", http.ok, http.sent, http.failures);
  }
  if (http.ok == 0) throw BenchError("throughput: no HTTP message succeeded");
  const double http_rate = static_cast<double>(http.ok) / (http.wall_ms / 1000.0);
  const double http_turns = static_cast<double>(z.messages + z.channels);  // warm-up included
  note(
      "throughput: http: {} messages over {} keep-alive connections ({} warm-up first) in {:.0f} "
      "ms, client latency p50 {:.2f} ms; parley CPU {:.0f} ms (warm-up included)",
      http.ok, z.channels, z.channels, http.wall_ms, percentile_sorted(http.latency_us, 0.5) / 1e3,
      http_cpu);
  if (d.rate_limit_violations() != 0) {
    note("throughput: the fake counted {} rate-limit violations (limits lifted?)",
         d.rate_limit_violations());
  }

  report.add("discord_msgs_per_s", discord_rate, "msg/s", 1);
  report.add("http_msgs_per_s", http_rate, "msg/s", 0);
  report.add("discord_vs_http_ratio", discord_rate / http_rate, "x", 4);
  report.add("discord_rest_req_per_s", rest_rate, "req/s", 1);
  report.add("discord_parley_cpu_us_per_msg",
             discord_cpu * 1000.0 / static_cast<double>(loop.answered), "us", 0);
  report.add("http_parley_cpu_us_per_msg", http_cpu * 1000.0 / http_turns, "us", 0);
  report.add("discord_p50_ms", percentile_sorted(lat.reply_ms, 0.5), "ms", 3);
  report.add("discord_p99_ms", percentile_sorted(lat.reply_ms, 0.99), "ms", 3);
  report.add("http_p50_ms", percentile_sorted(http_seq.latency_us, 0.5) / 1e3, "ms", 3);
  report.add("http_p99_ms", percentile_sorted(http_seq.latency_us, 0.99) / 1e3, "ms", 3);
  report.add("discord_seq_cpu_us_per_msg", seq_cpu * 1000.0 / static_cast<double>(z.sequential),
             "us", 0);
  report.add("http_seq_cpu_us_per_msg",
             http_seq_cpu * 1000.0 / static_cast<double>(z.sequential + kHttpSeqWarmup), "us", 0);
  report.add("discord_typing_p50_ms", percentile_sorted(lat.typing_ms, 0.5), "ms", 3);
  report.add("fake_inject_p50_us", percentile_sorted(lat.inject_us, 0.5), "us", 0);
}

struct ShardRun {
  long rss_kib = 0;
  long threads = 0;
  size_t fds = 0;
  double ready_ms = 0;  // exec to every shard READY
};

// parley with shards {ids: [0..count-1], count: count} against a fake with `guilds` guilds (one
// per shard of `guilds`), measured kSettle after every shard is READY.
ShardRun run_shards(Context& ctx, int count, int guilds, const std::string& name) {
  fakes::FakeDiscord::Options o;
  for (int i = 0; i < guilds; ++i) {
    o.guilds.push_back(guild_with(2, fmt::format("guild{}", i),
                                  fakes::FakeDiscord::snowflake_for_shard(i, guilds)));
  }
  o.recommended_shards = count;
  o.session_start_limit.max_concurrency = guilds;
  fakes::FakeDiscord d(std::move(o));
  const auto start = SteadyClock::now();
  Parley parley(ctx.paths, ctx.dir, name, *ctx.llm, d, parley_yaml(count));
  for (int i = 0; i < count; ++i) {
    if (!d.wait_ready(i, kReadyWait)) {
      throw BenchError(fmt::format("{}: shard {} of {} not READY in time; its log ends:\n{}", name,
                                   i, count, tail(parley.log())));
    }
  }
  ShardRun r;
  r.ready_ms = millis(SteadyClock::now() - start);
  std::this_thread::sleep_for(kSettle);
  const ProcStatus status = proc_status(parley.pid());
  r.rss_kib = status.rss_kib;
  r.threads = status.threads;
  r.fds = open_fds(parley.pid());
  size_t open = 0;
  for (const auto& c : d.connections()) open += c.open ? 1 : 0;
  ctx.all_ok = parley.stop() && ctx.all_ok;
  d.stop();
  if (open != static_cast<size_t>(count) || d.identify_rate_violations() != 0) {
    note("{}: {} gateway connections open for {} shards; {} IDENTIFYs refused by the fake's gate",
         name, open, count, d.identify_rate_violations());
  }
  return r;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

void bench_shards(Context& ctx, Report& report) {
  const int n = ctx.sizes.shards;
  std::vector<double> one;
  std::vector<double> many;
  std::vector<double> per_shard;
  for (int run = 0; run < ctx.sizes.rss_runs; ++run) {
    const ShardRun a = run_shards(ctx, 1, n, fmt::format("parley-1-shard-{}", run));
    const ShardRun b = run_shards(ctx, n, n, fmt::format("parley-{}-shards-{}", n, run));
    note(
        "shards: run {}: 1 shard READY after {:.0f} ms, VmRSS {} KiB, {} threads, {} fds; {} "
        "shards READY after {:.0f} ms, VmRSS {} KiB, {} threads, {} fds",
        run + 1, a.ready_ms, a.rss_kib, a.threads, a.fds, n, b.ready_ms, b.rss_kib, b.threads,
        b.fds);
    one.push_back(static_cast<double>(a.rss_kib));
    many.push_back(static_cast<double>(b.rss_kib));
    per_shard.push_back(static_cast<double>(b.rss_kib - a.rss_kib) / static_cast<double>(n - 1));
  }
  report.add("rss_shards", static_cast<double>(n), "shards", 0);
  report.add("rss_1_shard_mib", median(one) / 1024.0, "MiB", 2);
  report.add("rss_n_shards_mib", median(many) / 1024.0, "MiB", 2);
  report.add("rss_per_shard_kib", median(per_shard), "KiB", 0);
  // What one shard count varies by from process to process: the noise under the figure above.
  const auto [lo, hi] = std::minmax_element(one.begin(), one.end());
  report.add("rss_1_shard_spread_kib", *hi - *lo, "KiB", 0);
}

void bench_burst(Context& ctx, Report& report) {
  const Sizes& z = ctx.sizes;
  fakes::FakeDiscord::Options o;  // Discord's limits as the fake has them by default
  const auto create = o.rate_limits.find(route::kCreateMessage);
  if (create == o.rate_limits.end() || create->second.limit != kCreatePerWindow ||
      create->second.window != kWindow || !create->second.bucket.empty() ||
      o.global_limit != kGlobalPerWindow) {
    throw BenchError(
        "burst: the fake's default limits are no longer 5 messages a channel and 50 requests "
        "per second: the ideal computed here assumes them");
  }
  o.guilds = {guild_with(z.burst_channels, "burst")};
  fakes::FakeDiscord d(std::move(o));
  const fakes::FakeDiscordGuild guild = d.guilds().at(0);
  const std::vector<std::string> channels = channel_ids(guild);
  const std::string bot_id = d.bot_id();
  Parley parley(ctx.paths, ctx.dir, "parley-burst", *ctx.llm, d, parley_yaml(0));
  if (!d.wait_ready(0, kReadyWait)) {
    throw BenchError(
        fmt::format("burst: shard 0 not READY in time; its log ends:\n{}", tail(parley.log())));
  }
  const size_t total = channels.size() * z.burst_per_channel;
  // The messages, made before the clock starts: round k holds the k-th of every channel.
  std::vector<std::vector<fakes::FakeDiscordMessage>> by_round(z.burst_per_channel);
  size_t counter = 0;
  for (auto& round : by_round) {
    for (const auto& c : channels) round.push_back(mention(bot_id, guild.id, c, counter++));
  }
  // Generous: three times the ideal with typing, and a minute more.
  const auto give_up =
      SteadyClock::now() + seconds(60) +
      3 * kWindow * static_cast<int64_t>(2 * total / static_cast<size_t>(kGlobalPerWindow) + 1);

  const double cpu_before = cpu_ms(parley.pid());
  const int64_t before = dispatches(d);
  const auto t0 = SteadyClock::now();
  SteadyClock::time_point last_round = t0;
  for (size_t k = 0; k < by_round.size(); ++k) {
    if (k > 0) std::this_thread::sleep_until(t0 + static_cast<int64_t>(k) * kBurstGap);
    last_round = SteadyClock::now();
    for (auto& m : by_round[k]) d.inject_message(std::move(m));
  }
  // Until every message has its reply and its typing POST, or nothing new for kBurstQuiet. The
  // replies counted through dispatches(): each injection is one, each created message another.
  int64_t last_seen = 0;
  auto last_change = SteadyClock::now();
  bool timed_out = false;
  for (;;) {
    const int64_t replies = dispatches(d) - before - static_cast<int64_t>(total);
    const auto typing = static_cast<int64_t>(d.typing().size());
    if (replies >= static_cast<int64_t>(total) && typing >= static_cast<int64_t>(total)) break;
    const auto now = SteadyClock::now();
    if (replies + typing != last_seen) {
      last_seen = replies + typing;
      last_change = now;
    } else if (now - last_change >= kBurstQuiet) {
      break;
    }
    if (now >= give_up) {
      timed_out = true;
      break;
    }
    std::this_thread::sleep_for(kBurstPoll);
  }
  const double parley_cpu = cpu_ms(parley.pid()) - cpu_before;
  ctx.all_ok = parley.stop() && ctx.all_ok;
  d.stop();

  // What parley answered and what it sent.
  const auto requests = d.requests();
  const auto created = d.created_messages();
  size_t turns = 0;
  std::map<std::string, size_t> parts_in;
  for (const auto& c : created) {
    ++parts_in[c.channel_id];
    if (!replied_to(c.message_reference).empty()) ++turns;
  }
  const size_t parts = created.size();
  std::optional<SteadyClock::time_point> last_reply;
  std::map<std::string, SteadyClock::time_point> last_reply_in;
  for (const auto& q : requests) {
    if (q.route != route::kCreateMessage || q.status < 200 || q.status >= 300) continue;
    if (!last_reply || q.arrival > *last_reply) last_reply = q.arrival;
    auto& at = last_reply_in[q.major];
    at = std::max(at, q.arrival);
  }
  size_t sent = 0;         // every request from the first injection to the last reply
  size_t typing = 0;       // typing POSTs answered 204
  size_t typing_late = 0;  // … in a channel after its last reply
  size_t limited = 0;      // answered 429
  std::string violations;  // the first few, for the note
  for (const auto& q : requests) {
    if (q.arrival < t0) continue;
    if (q.status == 429) ++limited;
    if (q.violation && std::count(violations.begin(), violations.end(), ';') < 5) {
      violations += fmt::format("; {} at +{:.3f} s answered {}", q.route,
                                millis(q.arrival - t0) / 1000.0, q.status);
    }
    if (q.route == route::kTyping && q.status >= 200 && q.status < 300) {
      ++typing;
      const auto it = last_reply_in.find(q.major);
      if (it != last_reply_in.end() && q.arrival > it->second) ++typing_late;
    }
    if (last_reply && q.arrival <= *last_reply) ++sent;
  }
  if (!last_reply || parts == 0) throw BenchError("burst: parley created no message");

  // The ideal (see the header): R = the requests sent up to the last reply under the global
  // limit, each channel's parts under its bucket, the last injection.
  auto windows_after_first = [](size_t n, int per_window) -> double {
    if (n == 0) return 0;
    const auto per = static_cast<size_t>(per_window);
    const size_t windows = (n + per - 1) / per;
    return static_cast<double>(windows - 1) * std::chrono::duration<double>(kWindow).count();
  };
  const size_t needed = std::max(sent, parts);
  double channel_s = 0;
  for (const auto& [channel, p] : parts_in) {
    channel_s = std::max(channel_s, windows_after_first(p, kCreatePerWindow));
  }
  const double global_s = windows_after_first(needed, kGlobalPerWindow);
  const double inject_s = millis(last_round - t0) / 1000.0;
  const double ideal_s = std::max({global_s, channel_s, inject_s});
  const double total_s = millis(*last_reply - t0) / 1000.0;
  const double replies_only_s = std::max(
      {windows_after_first(parts, kGlobalPerWindow), channel_s, inject_s});  // without typing

  note(
      "burst: {} messages into {} channels ({} rounds {} ms apart); parley answered with {} "
      "turns ({} messages merged into others' turns), {} parts; it sent {} requests up to the "
      "last reply ({} counted for the ideal), {} typing POSTs answered in all "
      "({} beyond one per turn, {} in a channel after its last reply); {} answered 429; parley "
      "CPU {:.0f} ms{}",
      total, channels.size(), by_round.size(), kBurstGap.count(), turns,
      total > turns ? total - turns : 0, parts, sent, needed, typing,
      typing > turns ? typing - turns : 0, typing_late, limited, parley_cpu,
      timed_out ? "; GAVE UP waiting" : "");
  note(
      "burst: ideal = max(global {:.1f} s = (ceil({} / {}) - 1) windows, busiest channel {:.1f} "
      "s, last injection {:.2f} s) = {:.1f} s; without typing POSTs it would be {:.1f} s",
      global_s, needed, kGlobalPerWindow, channel_s, inject_s, ideal_s, replies_only_s);
  if (!violations.empty()) {
    note("burst: the fake counted {} rate-limit violations{}", d.rate_limit_violations(),
         violations);
  }
  if (turns < total) {
    note("burst: {} of {} messages were answered in a turn with others (lane debounce)",
         total - turns, total);
  }
  if (timed_out || turns == 0) ctx.all_ok = false;

  report.add("burst_messages", static_cast<double>(total), "msg", 0);
  report.add("burst_replies", static_cast<double>(turns), "msg", 0);
  report.add("burst_requests", static_cast<double>(sent), "req", 0);
  report.add("burst_total_s", total_s, "s", 2);
  report.add("burst_ideal_s", ideal_s, "s", 2);
  report.add("burst_vs_ideal", ideal_s > 0 ? total_s / ideal_s : 0.0, "x", 3);
  report.add("burst_429s", static_cast<double>(limited), "req", 0);
  report.add("rate_limit_violations", static_cast<double>(d.rate_limit_violations()), "req", 0);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  bool json_out = false;
  bool keep = false;
  Paths paths;
  std::optional<size_t> messages;
  std::optional<size_t> channels;
  std::optional<size_t> sequential_n;
  std::optional<int> shards;
  CLI::App app{
      "parley's Discord channel end to end against FakeDiscord: messages per second beside the "
      "HTTP channel, latency, memory per shard, a burst within Discord's rate limits"};
  app.add_flag("--quick", quick, "Small sizes for a smoke run (seconds)");
  app.add_flag("--json", json_out, "Print the figures as one JSON object");
  app.add_flag("--keep", keep, "Keep the temporary directory (logs, databases)");
  app.add_option("--parley", paths.parley, "The parley executable")->capture_default_str();
  app.add_option("--fake-server", paths.fake, "The fake_llm_server executable")
      ->capture_default_str();
  app.add_option("--load", paths.load, "The e2e_load executable")->capture_default_str();
  app.add_option("--messages", messages, "Timed messages (throughput), each way")
      ->check(CLI::PositiveNumber);
  app.add_option("--channels", channels, "Channels in parallel (throughput)")
      ->check(CLI::PositiveNumber);
  app.add_option("--sequential", sequential_n, "Messages one at a time (latency)")
      ->check(CLI::PositiveNumber);
  app.add_option("--shards", shards, "Shards of the many-shard run (memory)")
      ->check(CLI::Range(2, 64));
  CLI11_PARSE(app, argc, argv);
  (void)std::signal(SIGPIPE, SIG_IGN);  // a child's closed pipe is an error, not our end

  try {
    check_executable(paths.parley, "parley", "--parley");
    check_executable(paths.fake, "fake_llm_server", "--fake-server");
    check_executable(paths.load, "e2e_load", "--load");
    TempDir dir("bench_discord.", {}, keep);  // before ctx: outlives the processes in it
    Context ctx;
    ctx.paths = paths;
    ctx.sizes = quick ? kQuickSizes : kFullSizes;
    if (messages) ctx.sizes.messages = *messages;
    if (channels) ctx.sizes.channels = *channels;
    if (sequential_n) ctx.sizes.sequential = *sequential_n;
    if (shards) ctx.sizes.shards = *shards;
    ctx.dir = dir.path();
    const rlim_t nofile = raise_nofile_limit();
    note("bench_discord: {} run, {} hardware threads, RLIMIT_NOFILE {}, in {}",
         quick ? "quick" : "full", std::thread::hardware_concurrency(), nofile, ctx.dir.string());
    ctx.llm = std::make_unique<LlmFake>(ctx.paths, ctx.dir);

    Report report(json_out);
    const auto start = SteadyClock::now();
    bench_latency_throughput(ctx, report);
    bench_shards(ctx, report);
    bench_burst(ctx, report);
    ctx.llm->stop();
    report.finish();
    note("bench_discord: done in {:.1f} s{}", millis(SteadyClock::now() - start) / 1000.0,
         keep ? fmt::format("; kept {}", ctx.dir.string()) : "");
    return ctx.all_ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "bench_discord: " << e.what() << '\n';
    return 1;
  }
}
