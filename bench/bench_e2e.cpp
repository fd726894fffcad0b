// bench_e2e: the real `parley run` binary end to end — HTTP in, a turn, the LLM call, the reply
// out — against fake_llm_server, each its own process, with the load from e2e_load (a third
// process: one thread, Beast async clients). Only 127.0.0.1; every process started here is
// stopped here (SIGTERM, then SIGKILL), on failures too, and dies with the bench
// (PR_SET_PDEATHSIG) should the bench itself be killed.
//
// Every parley runs with a configuration of the bench's own (a temporary directory): every
// built-in capability enabled, the LLM given through PARLEY_LLM_BASE_URL / _MODEL / _API_KEY
// (and every other PARLEY_*, provider key and proxy variable removed from its environment).
//
// Groups, in this order:
//   startup     parley run on a new database against a recording fake: exec to the "ready in"
//               line on stdout (parley_ready_ms), VmRSS once idle (parley_idle_rss_mib); then
//               one message through it, whose LLM request — what a turn on the HTTP channel
//               sends — becomes the body of the direct baseline below.
//   prompt      `parley ask hello --json` (console user: an admin, so every capability is
//               offered) against the recording fake: the request body's bytes, bytes/4 and
//               parley's own llm::estimate_prompt_tokens of it (target: at most 1,500 tokens).
//   throughput  parley restarted on that database (parley_restart_ready_ms) against a fake
//               answering at once; --clients keep-alive connections send --messages turns, each
//               in a new conversation of a new user (the access policy limits messages per user
//               per minute). Messages per second, client-observed latency, parley's CPU time per
//               turn, and parley's overhead per message = client-observed latency − the time
//               inside the LLM, the reply's llm_latency_ms. Should a build's reply lack that
//               field (turn_json in run_command.cpp had only latency_ms at first; `ask --json`
//               had both), the LLM's time is taken as the fake's, which answers at once (~0):
//               the overhead is then the client-observed latency, the loopback round trip to
//               the fake included. Side by side, the same load generator and clients on the
//               fake directly (POST /chat/completions with the recorded body): the ratio.
//   concurrent  a fresh parley against a fake that answers after --delay-ms; --concurrent
//               conversations at once, one connection each, all in flight together. parley's
//               peak VmHWM, threads and descriptors (sampled every 50 ms), its CPU time per
//               turn. Each conversation
//               costs parley two descriptors (the inbound connection, the outbound one to the
//               LLM: HTTP/1.1, no multiplexing), so RLIMIT_NOFILE caps it near half the hard
//               limit: when not every conversation succeeds, the bench says why and measures
//               again at the largest count the limit allows (conc_* figures are that run's;
//               conc_requested is what was asked).
//
// Figures go to stdout as `name value unit` lines (or one JSON object with --json); context to
// stderr. --quick shrinks every size for a CI smoke run (well under 30 s). Exit 1 when a
// message failed or a process misbehaved.
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
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "bench_process.h"
#include "bench_report.h"
#include "bench_util.h"
#include "parley/bot/clients/llm/types.h"

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
namespace llm = parley::bot::llm;
using nlohmann::json;
using namespace parley::bench;  // the benches' own kit: bench_report.h, bench_util.h
using std::chrono::milliseconds;

// ---- Parameters ----

constexpr std::string_view kModel = "bench/model";
constexpr auto kSamplePeriod = milliseconds(50);
constexpr auto kIdleSettle = milliseconds(500);  // after ready, before the idle RSS
constexpr size_t kSpareDescriptors = 64;  // parley's own: database, WAL, listener, epoll, …
constexpr size_t kPromptTokenTarget = 1'500;

// Every size that --quick shrinks.
struct Sizes {
  size_t warmup;      // throughput: untimed turns (and direct calls) first
  size_t messages;    // throughput: timed turns (and direct calls)
  size_t clients;     // throughput: connections at once
  size_t concurrent;  // conversations in flight at once
  int delay_ms;       // concurrent: the fake's delay before each answer
};

constexpr Sizes kFullSizes{
    .warmup = 500, .messages = 10'000, .clients = 32, .concurrent = 10'000, .delay_ms = 2'000};
constexpr Sizes kQuickSizes{
    .warmup = 50, .messages = 200, .clients = 16, .concurrent = 200, .delay_ms = 200};

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

// fake_llm_server on a free port, answering "ok" after `delay_ms`; `record`: --record-last.
class Fake {
 public:
  Fake(const Paths& paths, const fs::path& dir, const std::string& name, int delay_ms,
       const fs::path& record = {})
      : process_(name, spec(paths, dir, name, delay_ms, record)) {
    const auto line = process_.wait_line("port ").text;
    port_ = static_cast<uint16_t>(std::strtoul(line.c_str() + line.find("port ") + 5, nullptr, 10));
    if (port_ == 0) throw BenchError(fmt::format("{}: no port in '{}'", name, line));
  }

  [[nodiscard]] uint16_t port() const { return port_; }
  [[nodiscard]] std::string base_url() const {
    return fmt::format("http://127.0.0.1:{}/v1", port_);
  }
  [[nodiscard]] pid_t pid() const { return process_.pid(); }
  void stop() { (void)process_.stop(); }

 private:
  static Spawn spec(const Paths& paths, const fs::path& dir, const std::string& name, int delay_ms,
                    const fs::path& record) {
    Spawn s;
    s.argv = {paths.fake, "--delay-ms", std::to_string(delay_ms), "--threads", "1"};
    if (!record.empty()) {
      s.argv.emplace_back("--record-last");
      s.argv.push_back(record.string());
    }
    s.env = clean_environment();
    s.log = dir / (name + ".log");
    s.stdin_pipe = true;
    return s;
  }

  Process process_;
  uint16_t port_ = 0;
};

// What every parley of the bench shares: its configuration and environment.
struct ParleySetup {
  fs::path dir;     // cwd, logs
  fs::path config;  // parley.yaml
};

std::vector<std::string> parley_environment(const Fake& fake) {
  auto env = clean_environment();
  env.push_back("PARLEY_LLM_BASE_URL=" + fake.base_url());
  env.push_back("PARLEY_LLM_MODEL=" + std::string(kModel));
  env.push_back("PARLEY_LLM_API_KEY=sk-bench-0123456789abcdef");
  return env;
}

// `parley run` on `db`, up to its "ready in" line.
class Parley {
 public:
  Parley(const Paths& paths, const ParleySetup& setup, const Fake& fake, const fs::path& db,
         const std::string& name)
      : log_(setup.dir / (name + ".log")), process_(name, spec(paths, setup, fake, db, log_)) {
    try {
      const auto ready = process_.wait_line("ready in");
      ready_ms_ = millis(ready.at - process_.started());
      std::smatch m;
      if (std::regex_search(ready.text, m, std::regex(R"(ready in (\d+) ms)"))) {
        self_reported_ms_ = std::stod(m[1].str());
      }
      if (std::regex_search(ready.text, m, std::regex(R"(http://127\.0\.0\.1:(\d+)/)"))) {
        port_ = static_cast<uint16_t>(std::stoul(m[1].str()));
      }
      if (port_ == 0) throw BenchError(fmt::format("{}: no port in '{}'", name, ready.text));
    } catch (const BenchError& e) {
      throw BenchError(fmt::format("{}; its log ends:\n{}", e.what(), tail(log_)));
    }
  }

  [[nodiscard]] pid_t pid() const { return process_.pid(); }
  [[nodiscard]] uint16_t port() const { return port_; }
  [[nodiscard]] double ready_ms() const { return ready_ms_; }
  [[nodiscard]] double self_reported_ms() const { return self_reported_ms_; }
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
  static Spawn spec(const Paths& paths, const ParleySetup& setup, const Fake& fake,
                    const fs::path& db, const fs::path& log) {
    Spawn s;
    s.argv = {paths.parley, "--config", setup.config.string(), "--db",    db.string(),
              "run",        "--http",   "127.0.0.1:0",         "--grace", "2"};
    s.env = parley_environment(fake);
    s.cwd = setup.dir;
    s.log = log;
    return s;
  }

  fs::path log_;  // before process_: its spec names it
  Process process_;
  double ready_ms_ = 0;
  double self_reported_ms_ = 0;
  uint16_t port_ = 0;
};

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

// ---- Configuration ----

// parley.yaml and capabilities.yaml in `dir`: every built-in capability that `parley
// capabilities --json` lists, enabled.
ParleySetup write_setup(const Paths& paths, const fs::path& dir) {
  ParleySetup setup{dir, dir / "parley.yaml"};
  const fs::path caps = dir / "capabilities.yaml";
  write_file(caps, "capabilities: {}\n");
  write_file(setup.config, fmt::format("capabilities:\n  file: {}\nlog:\n  level: warn\n",
                                       json(caps.string()).dump()));

  Spawn s;
  s.argv = {paths.parley,   "--config", setup.config.string(), "--db", (dir / "list.db").string(),
            "capabilities", "--json"};
  s.env = clean_environment();
  s.cwd = dir;
  s.log = dir / "capabilities.log";
  Process p("parley capabilities", s);
  const auto code = p.wait_exit(std::chrono::seconds(30));
  const json list = json::parse(p.stdout_text(), nullptr, false);
  std::vector<std::string> names;
  auto collect = [&](const json& items) {
    for (const auto& c : items) {
      if (c.is_object() && c.contains("name") && c["name"].is_string()) names.push_back(c["name"]);
    }
  };
  if (list.is_array()) collect(list);
  if (list.is_object() && list.contains("capabilities")) collect(list["capabilities"]);
  if (code != 0 || names.empty()) {
    throw BenchError(fmt::format("`parley capabilities --json` (exit {}) listed none:\n{}{}",
                                 code ? std::to_string(*code) : "?", p.stdout_text(), tail(s.log)));
  }
  std::string yaml = "capabilities:\n";
  for (const auto& n : names) yaml += fmt::format("  {}:\n    enabled: true\n", n);
  write_file(caps, yaml);
  std::string shown;
  for (const auto& n : names) shown += (shown.empty() ? "" : ", ") + n;
  note("setup: every built-in capability enabled: {}", shown);
  return setup;
}

// ---- Groups ----

struct Context {
  Paths paths;
  Sizes sizes;
  fs::path dir;
  ParleySetup setup;
  fs::path db;            // startup's database, reused by throughput
  fs::path http_request;  // the LLM request of one HTTP turn (startup), the direct baseline's
  bool all_ok = true;
};

void bench_startup(Context& ctx, Report& report) {
  const fs::path record = ctx.dir / "startup-request.json";
  Fake fake(ctx.paths, ctx.dir, "fake-startup", 0, record);
  Parley parley(ctx.paths, ctx.setup, fake, ctx.db, "parley-startup");
  std::this_thread::sleep_for(kIdleSettle);
  const ProcStatus idle = proc_status(parley.pid());
  const size_t idle_fds = open_fds(parley.pid());
  note(
      "startup: exec to the ready line {:.1f} ms (parley says {:.0f} ms), a new database; "
      "idle after {} ms: VmRSS {:.1f} MiB, {} threads, {} descriptors",
      parley.ready_ms(), parley.self_reported_ms(), kIdleSettle.count(), mib_from_kib(idle.rss_kib),
      idle.threads, idle_fds);
  report.add("parley_ready_ms", parley.ready_ms(), "ms", 1);
  report.add("parley_idle_rss_mib", mib_from_kib(idle.rss_kib), "MiB", 1);

  // One turn over HTTP: its LLM request is the direct baseline's body.
  const LoadResult one =
      run_load(ctx.paths, ctx.dir, parley_load_args(parley.port(), 1, 1, 0, "startup"), 30);
  if (one.ok != 1) throw BenchError("startup: the first message failed: " + one.failures);
  if (!fs::exists(record)) throw BenchError("startup: the fake recorded no request");
  fs::copy_file(record, ctx.http_request, fs::copy_options::overwrite_existing);
  note("startup: the LLM request of an HTTP turn: {} bytes (the direct baseline's body)",
       fs::file_size(ctx.http_request));
  ctx.all_ok = parley.stop() && ctx.all_ok;
}

// The recorded body as the ChatRequest parley built, for llm::estimate_prompt_tokens.
llm::ChatRequest as_chat_request(const json& body) {
  llm::ChatRequest r;
  for (const auto& m : body.value("messages", json::array())) {
    llm::Message msg;
    const std::string role = m.value("role", "user");
    msg.role = role == "system"      ? llm::Role::system
               : role == "assistant" ? llm::Role::assistant
               : role == "tool"      ? llm::Role::tool
                                     : llm::Role::user;
    if (m.contains("content") && m["content"].is_string()) msg.content = m["content"];
    r.messages.push_back(std::move(msg));
  }
  for (const auto& t : body.value("tools", json::array())) {
    const json f = t.value("function", json::object());
    r.tools.push_back(
        {f.value("name", ""), f.value("description", ""), f.value("parameters", json::object())});
  }
  return r;
}

void bench_prompt(Context& ctx, Report& report) {
  const fs::path record = ctx.dir / "ask-request.json";
  Fake fake(ctx.paths, ctx.dir, "fake-prompt", 0, record);
  Spawn s;
  s.argv = {ctx.paths.parley,
            "--config",
            ctx.setup.config.string(),
            "--db",
            (ctx.dir / "ask.db").string(),
            "ask",
            "hello",
            "--json",
            "--user",
            "bench"};
  s.env = parley_environment(fake);
  s.cwd = ctx.dir;
  s.log = ctx.dir / "ask.log";
  Process ask("parley ask", s);
  const auto code = ask.wait_exit(std::chrono::seconds(60));
  const json answer = json::parse(ask.stdout_text(), nullptr, false);
  if (code != 0 || !answer.is_object() || answer.value("reply", "") != "ok") {
    throw BenchError(fmt::format("`parley ask hello --json` (exit {}): {}{}",
                                 code ? std::to_string(*code) : "timeout", ask.stdout_text(),
                                 tail(s.log)));
  }
  const std::string body = slurp(record);
  const json request = json::parse(body, nullptr, false);
  if (!request.is_object()) throw BenchError("prompt: the recorded request is not JSON");
  const llm::ChatRequest chat = as_chat_request(request);
  size_t system_bytes = 0;
  size_t content_bytes = 0;
  for (const auto& m : chat.messages) {
    content_bytes += m.content.size();
    if (m.role == llm::Role::system) system_bytes += m.content.size();
  }
  const size_t tools_bytes = request.value("tools", json::array()).dump().size();
  const int64_t estimate = llm::estimate_prompt_tokens(chat);
  std::string tools;
  for (const auto& t : chat.tools) tools += (tools.empty() ? "" : ", ") + t.name;
  note(
      "prompt: `parley ask hello` sent {} messages ({} content bytes, {} of them system), {} "
      "tools ({} bytes of JSON: {}); llm_calls {}; target <= {} tokens: {}",
      chat.messages.size(), content_bytes, system_bytes, chat.tools.size(), tools_bytes, tools,
      answer.value("llm_calls", 0), kPromptTokenTarget,
      static_cast<size_t>(estimate) <= kPromptTokenTarget ? "met" : "NOT met");
  if (fs::exists(ctx.http_request)) {
    note("prompt: for comparison, an HTTP turn's request (a new user, not an admin) is {} bytes",
         fs::file_size(ctx.http_request));
  }
  report.add("prompt_bytes", static_cast<double>(body.size()), "bytes", 0);
  report.add("prompt_tokens_est", static_cast<double>(body.size()) / 4.0, "tokens", 0);
  report.add("prompt_tokens_est_parley", static_cast<double>(estimate), "tokens", 0);
  report.add("prompt_system_bytes", static_cast<double>(system_bytes), "bytes", 0);
  report.add("prompt_tools", static_cast<double>(chat.tools.size()), "tools", 0);
  report.add("prompt_tools_bytes", static_cast<double>(tools_bytes), "bytes", 0);
}

void bench_throughput(Context& ctx, Report& report) {
  const Sizes& z = ctx.sizes;
  Fake fake(ctx.paths, ctx.dir, "fake-throughput", 0);
  Parley parley(ctx.paths, ctx.setup, fake, ctx.db, "parley-throughput");
  note("throughput: parley restarted on the startup database: ready in {:.1f} ms",
       parley.ready_ms());
  report.add("parley_restart_ready_ms", parley.ready_ms(), "ms", 1);

  const int timeout_s = 300;
  const double cpu_before = cpu_ms(parley.pid());
  const double fake_cpu_before = cpu_ms(fake.pid());
  const LoadResult e2e =
      run_load(ctx.paths, ctx.dir,
               parley_load_args(parley.port(), z.clients, z.messages, z.warmup, "tp"), timeout_s);
  const double parley_cpu = cpu_ms(parley.pid()) - cpu_before;
  const double fake_cpu = cpu_ms(fake.pid()) - fake_cpu_before;
  const ProcStatus after = proc_status(parley.pid());
  const LoadResult direct =
      run_load(ctx.paths, ctx.dir,
               {"--mode", "llm", "--port", std::to_string(fake.port()), "--clients",
                std::to_string(z.clients), "--messages", std::to_string(z.messages), "--warmup",
                std::to_string(z.warmup), "--body-file", ctx.http_request.string()},
               timeout_s);
  ctx.all_ok = parley.stop() && ctx.all_ok;
  fake.stop();
  if (e2e.ok != e2e.sent || direct.ok != direct.sent) {
    ctx.all_ok = false;
    note("throughput: FAILED: parley {} of {} ok ({}); direct {} of {} ok ({})", e2e.ok, e2e.sent,
         e2e.failures, direct.ok, direct.sent, direct.failures);
  }
  if (e2e.latency_us.empty() || direct.latency_us.empty()) {
    throw BenchError("throughput: no successful request to measure");
  }

  // Overhead per message: client-observed minus the LLM's time. Without llm_latency_ms in the
  // replies, the LLM's time is the fake's own, ~0 (it answers at once): see the header.
  const bool have_llm = e2e.overhead_us.size() == e2e.latency_us.size();
  const std::vector<double>& overhead_us = have_llm ? e2e.overhead_us : e2e.latency_us;
  const double e2e_rate = static_cast<double>(e2e.ok) / (e2e.wall_ms / 1000.0);
  const double direct_rate = static_cast<double>(direct.ok) / (direct.wall_ms / 1000.0);
  note(
      "throughput: {} turns ({} warm-up first) over {} keep-alive connections in {:.0f} ms; "
      "parley's own turn time (its latency_ms) p50 {:.2f} ms, p99 {:.2f} ms; overhead = "
      "client-observed {}; VmRSS after {:.1f} MiB (peak {:.1f} MiB)",
      e2e.ok, z.warmup, z.clients, e2e.wall_ms, percentile_sorted(e2e.turn_ms, 0.5),
      percentile_sorted(e2e.turn_ms, 0.99),
      have_llm ? "- llm_latency_ms"
               : "- 0 (no llm_latency_ms in the reply; the fake answers at once)",
      mib_from_kib(after.rss_kib), mib_from_kib(after.hwm_kib));
  note("throughput: direct: {} chat completions ({}-byte body) to the fake in {:.0f} ms", direct.ok,
       fs::file_size(ctx.http_request), direct.wall_ms);
  // CPU time is less at the mercy of the neighbours on a shared machine than wall time.
  const double turns = static_cast<double>(z.warmup + z.messages);
  note(
      "throughput: CPU during the {} turns (warm-up included): parley {:.0f} ms ({:.0f} us a "
      "turn), the fake {:.0f} ms ({:.0f} us a call)",
      z.warmup + z.messages, parley_cpu, parley_cpu * 1000.0 / turns, fake_cpu,
      fake_cpu * 1000.0 / turns);

  report.add("e2e_msgs_per_s", e2e_rate, "msg/s", 0);
  report.add("e2e_client_p50_ms", percentile_sorted(e2e.latency_us, 0.5) / 1000.0, "ms", 3);
  report.add("e2e_client_p99_ms", percentile_sorted(e2e.latency_us, 0.99) / 1000.0, "ms", 3);
  report.add("e2e_overhead_p50_ms", percentile_sorted(overhead_us, 0.5) / 1000.0, "ms", 3);
  report.add("e2e_overhead_p99_ms", percentile_sorted(overhead_us, 0.99) / 1000.0, "ms", 3);
  report.add("llm_direct_msgs_per_s", direct_rate, "msg/s", 0);
  report.add("llm_direct_p50_ms", percentile_sorted(direct.latency_us, 0.5) / 1000.0, "ms", 3);
  report.add("llm_direct_p99_ms", percentile_sorted(direct.latency_us, 0.99) / 1000.0, "ms", 3);
  report.add("e2e_vs_direct_rate_ratio", e2e_rate / direct_rate, "x", 3);
  report.add("e2e_parley_cpu_us_per_msg", parley_cpu * 1000.0 / turns, "us", 0);
  // The baseline of the same run: what answering one call costs the fake LLM server.
  report.add("fake_cpu_us_per_call", fake_cpu * 1000.0 / turns, "us", 0);
  report.add("e2e_cpu_vs_fake_ratio", fake_cpu > 0 ? parley_cpu / fake_cpu : 0.0, "x", 2);
}

struct ConcurrentRun {
  size_t n = 0;
  LoadResult load;
  long rss_idle_kib = 0;
  long hwm_kib = 0;
  long threads_peak = 0;
  size_t fds_peak = 0;
  size_t fds_idle = 0;
  double cpu_ms = 0;          // parley's, during the load
  size_t connect_errors = 0;  // parley's log lines about LLM connections that failed
  std::string connect_error;  // one of them
  bool parley_ok = true;
};

ConcurrentRun run_concurrent(Context& ctx, size_t n, const std::string& tag) {
  const Sizes& z = ctx.sizes;
  Fake fake(ctx.paths, ctx.dir, "fake-" + tag, z.delay_ms);
  Parley parley(ctx.paths, ctx.setup, fake, ctx.dir / (tag + ".db"), "parley-" + tag);
  std::this_thread::sleep_for(milliseconds(200));
  ConcurrentRun r;
  r.n = n;
  r.rss_idle_kib = proc_status(parley.pid()).rss_kib;
  r.fds_idle = open_fds(parley.pid());
  {
    const double cpu_before = cpu_ms(parley.pid());
    ProcessSampler sampler(parley.pid(), kSamplePeriod);
    r.load = run_load(ctx.paths, ctx.dir, parley_load_args(parley.port(), n, n, 0, tag),
                      60 + z.delay_ms / 1000 * 10);
    sampler.stop();
    r.cpu_ms = cpu_ms(parley.pid()) - cpu_before;
    r.threads_peak = sampler.threads_peak();
    r.fds_peak = sampler.fds_peak();
  }
  r.hwm_kib = proc_status(parley.pid()).hwm_kib;
  r.parley_ok = parley.stop();
  fake.stop();
  std::istringstream log_text(slurp(parley.log()));
  for (std::string line; std::getline(log_text, line);) {
    if (line.find("connection failed") == std::string::npos) continue;
    if (r.connect_errors++ == 0) r.connect_error = line;
  }
  return r;
}

void bench_concurrent(Context& ctx, Report& report, rlim_t nofile) {
  const Sizes& z = ctx.sizes;
  ConcurrentRun run = run_concurrent(ctx, z.concurrent, "concurrent");
  auto describe = [&](const ConcurrentRun& r) {
    // All were sent within connected_ms of the start: a latency is about a completion time.
    std::string deciles;
    for (int d = 1; d <= 10; ++d) {
      deciles += fmt::format(" {:.0f}", percentile_sorted(r.load.latency_us, d / 10.0) / 1000.0);
    }
    note("concurrent: client latency by decile (ms):{}; parley CPU {:.0f} ms ({:.0f} us a turn)",
         deciles, r.cpu_ms, r.cpu_ms * 1000.0 / static_cast<double>(std::max<size_t>(r.n, 1)));
    if (r.connect_errors > 0) {
      note("concurrent: parley's log has {} failed LLM connections, e.g.: {}", r.connect_errors,
           r.connect_error);
    }
    note(
        "concurrent: {} conversations, {} ok, all connected after {:.0f} ms, {} in flight at "
        "the peak; wall {:.0f} ms from the first connect (LLM delay {} ms); client latency p50 "
        "{:.0f} ms, max {:.0f} ms; parley idle {:.1f} MiB / {} descriptors, peak VmHWM {:.1f} "
        "MiB, {} threads, {} descriptors{}{}",
        r.n, r.load.ok, r.load.connected_ms, r.load.in_flight_peak, r.load.wall_from_connect_ms,
        z.delay_ms, percentile_sorted(r.load.latency_us, 0.5) / 1000.0,
        r.load.latency_us.empty() ? 0.0 : r.load.latency_us.back() / 1000.0,
        mib_from_kib(r.rss_idle_kib), r.fds_idle, mib_from_kib(r.hwm_kib), r.threads_peak,
        r.fds_peak, r.load.failures.empty() ? "" : "; failures: ", r.load.failures);
  };
  describe(run);
  const size_t requested = z.concurrent;
  if (run.load.ok != run.n) {
    // Each conversation holds two of parley's descriptors while it waits (inbound, and the
    // outbound LLM connection): the limit, less what parley holds idle and a margin, halved.
    const size_t budget = nofile > run.fds_idle + kSpareDescriptors
                              ? (static_cast<size_t>(nofile) - run.fds_idle - kSpareDescriptors) / 2
                              : 0;
    note(
        "concurrent: {} of {} conversations failed. parley's RLIMIT_NOFILE is {}: {} "
        "conversations need about {} descriptors (2 each: the inbound connection and the "
        "outbound LLM connection, plus {} held idle); the limit allows about {}",
        run.n - run.load.ok, run.n, nofile, run.n, 2 * run.n + run.fds_idle, run.fds_idle, budget);
    if (budget > 0 && budget < run.n) {
      run = run_concurrent(ctx, budget, "concurrent-fit");
      describe(run);
    }
  }
  if (run.load.ok != run.n || !run.parley_ok) ctx.all_ok = false;
  report.add("conc_requested", static_cast<double>(requested), "conversations", 0);
  report.add("conc_conversations", static_cast<double>(run.n), "conversations", 0);
  report.add("conc_ok", static_cast<double>(run.load.ok), "conversations", 0);
  report.add("conc_wall_ms", run.load.wall_from_connect_ms, "ms", 0);
  report.add("conc_msgs_per_s",
             static_cast<double>(run.load.ok) / (run.load.wall_from_connect_ms / 1000.0), "msg/s",
             0);
  report.add("conc_parley_peak_rss_mib", mib_from_kib(run.hwm_kib), "MiB", 1);
  report.add("conc_parley_threads_peak", static_cast<double>(run.threads_peak), "threads", 0);
  report.add("conc_parley_open_fds_peak", static_cast<double>(run.fds_peak), "fds", 0);
  report.add("conc_parley_cpu_us_per_msg", run.cpu_ms * 1000.0 / static_cast<double>(run.n), "us",
             0);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  bool json_out = false;
  bool keep = false;
  Paths paths;
  std::optional<size_t> messages;
  std::optional<size_t> clients;
  std::optional<size_t> concurrent;
  std::optional<int> delay_ms;
  CLI::App app{
      "parley end to end: messages per second, 10,000 conversations at once, start-up, "
      "prompt weight"};
  app.add_flag("--quick", quick, "Small sizes for a smoke run (well under 30 s)");
  app.add_flag("--json", json_out, "Print the figures as one JSON object");
  app.add_flag("--keep", keep, "Keep the temporary directory (logs, databases, requests)");
  app.add_option("--parley", paths.parley, "The parley executable")->capture_default_str();
  app.add_option("--fake-server", paths.fake, "The fake_llm_server executable")
      ->capture_default_str();
  app.add_option("--load", paths.load, "The e2e_load executable")->capture_default_str();
  app.add_option("--messages", messages, "Timed turns (throughput)")->check(CLI::PositiveNumber);
  app.add_option("--clients", clients, "Connections at once (throughput)")
      ->check(CLI::PositiveNumber);
  app.add_option("--concurrent", concurrent, "Conversations in flight at once")
      ->check(CLI::PositiveNumber);
  app.add_option("--delay-ms", delay_ms, "The fake's delay before each answer (concurrent)")
      ->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);
  (void)std::signal(SIGPIPE, SIG_IGN);  // a child's closed pipe is an error, not our end

  try {
    check_executable(paths.parley, "parley", "--parley");
    check_executable(paths.fake, "fake_llm_server", "--fake-server");
    check_executable(paths.load, "e2e_load", "--load");
    Context ctx;
    ctx.paths = paths;
    ctx.sizes = quick ? kQuickSizes : kFullSizes;
    if (messages) ctx.sizes.messages = *messages;
    if (clients) ctx.sizes.clients = *clients;
    if (concurrent) ctx.sizes.concurrent = *concurrent;
    if (delay_ms) ctx.sizes.delay_ms = *delay_ms;
    TempDir dir("bench_e2e.", {}, keep);
    ctx.dir = dir.path();
    ctx.db = ctx.dir / "startup.db";
    ctx.http_request = ctx.dir / "http-request.json";
    const rlim_t nofile = raise_nofile_limit();
    note("bench_e2e: {} run, {} hardware threads, RLIMIT_NOFILE {} (for every child), in {}",
         quick ? "quick" : "full", std::thread::hardware_concurrency(), nofile, ctx.dir.string());
    ctx.setup = write_setup(ctx.paths, ctx.dir);

    Report report(json_out);
    const auto start = SteadyClock::now();
    bench_startup(ctx, report);
    bench_prompt(ctx, report);
    bench_throughput(ctx, report);
    bench_concurrent(ctx, report, nofile);
    report.finish();
    note("bench_e2e: done in {:.1f} s{}", millis(SteadyClock::now() - start) / 1000.0,
         keep ? fmt::format("; kept {}", ctx.dir.string()) : "");
    return ctx.all_ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "bench_e2e: " << e.what() << '\n';
    return 1;
  }
}
