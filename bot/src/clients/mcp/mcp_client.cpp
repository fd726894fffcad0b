#include "parley/bot/clients/mcp/mcp_client.h"

#include <algorithm>
#include <deque>
#include <utility>

#include <spdlog/spdlog.h>

#include "clients/mcp/http_transport.h"
#include "clients/mcp/stdio_transport.h"
#include "clients/mcp/transport.h"
#include "parley/bot/clients/http/curl_multi.h"

#ifndef PARLEY_VERSION
#define PARLEY_VERSION "0"
#endif

namespace parley::bot::mcp {

namespace asio = net::asio;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

std::string_view to_string(McpClient::State s) noexcept {
  switch (s) {
    case McpClient::State::starting: return "starting";
    case McpClient::State::ready: return "ready";
    case McpClient::State::down: return "down";
    case McpClient::State::broken: return "broken";
  }
  return "unknown";
}

// ---- McpCancel ----

void McpCancel::cancel() {
  cancelled_ = true;
  std::map<uint64_t, std::function<void()>> run;
  {
    std::lock_guard lock(mutex_);
    run.swap(watchers_);
  }
  for (auto& [key, f] : run) f();
}

uint64_t McpCancel::watch(std::function<void()> on_cancel) {
  {
    std::lock_guard lock(mutex_);
    if (!cancelled_) {
      uint64_t key = ++next_;
      watchers_.emplace(key, std::move(on_cancel));
      return key;
    }
  }
  on_cancel();
  return 0;
}

void McpCancel::forget(uint64_t key) {
  std::lock_guard lock(mutex_);
  watchers_.erase(key);
}

// ---- reading results ----

namespace {

std::string with_commas(size_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// Bytes a base64 text decodes to, without decoding it.
size_t base64_bytes(const std::string& b64) {
  size_t n = b64.size();
  size_t pad = 0;
  while (pad < 2 && n > pad && b64[n - 1 - pad] == '=') ++pad;
  return n / 4 * 3 - std::min(pad, n / 4 * 3);
}

bool bool_field(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

std::string string_field(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string summarise_resource(const json& r) {
  std::string uri = string_field(r, "uri");
  std::string mime = string_field(r, "mimeType");
  size_t bytes = 0;
  if (auto t = r.find("text"); t != r.end() && t->is_string()) {
    bytes = t->get_ref<const std::string&>().size();
  } else if (auto b = r.find("blob"); b != r.end() && b->is_string()) {
    bytes = base64_bytes(b->get<std::string>());
  }
  return "[resource " + uri + (mime.empty() ? "" : " " + mime) + ", " + with_commas(bytes) +
         " bytes]";
}

}  // namespace

McpCallResult read_call_result(const json& result, size_t max_bytes) {
  McpCallResult out;
  out.is_error = bool_field(result, "isError");
  if (auto s = result.find("structuredContent"); s != result.end()) out.structured = *s;
  std::string text;
  auto add = [&](const std::string& part) {
    if (!text.empty()) text += '\n';
    text += part;
  };
  if (auto content = result.find("content"); content != result.end() && content->is_array()) {
    for (const auto& c : *content) {
      if (!c.is_object()) continue;
      std::string type = string_field(c, "type");
      if (type == "text") {
        add(string_field(c, "text"));
      } else if (type == "image" || type == "audio") {
        add("[" + type + " " + string_field(c, "mimeType") + ", " +
            with_commas(base64_bytes(string_field(c, "data"))) + " bytes]");
      } else if (type == "resource") {
        auto r = c.find("resource");
        add(summarise_resource(r != c.end() ? *r : json::object()));
      } else if (type == "resource_link") {
        std::string name = string_field(c, "name");
        add("[resource link " + string_field(c, "uri") + (name.empty() ? "" : " " + name) + "]");
      } else {
        add("[" + (type.empty() ? std::string("unknown") : type) + " content]");
      }
    }
  }
  if (text.empty() && !out.structured.is_null()) {
    // Older servers answer with structuredContent alone.
    text = out.structured.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  if (text.size() > max_bytes) {
    size_t total = text.size();
    size_t cut = max_bytes;
    // Never split a UTF-8 sequence.
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text.resize(cut);
    text += "\n[… cut: the result was " + with_commas(total) + " bytes, showing the first " +
            with_commas(cut) + "]";
  }
  out.text = std::move(text);
  return out;
}

// ---- the client ----

using Done = std::function<void(Result<json>, std::vector<std::string> progress)>;

struct McpClient::Impl : std::enable_shared_from_this<McpClient::Impl> {
  struct Pending {
    std::string what;  // "tools/call echo", for errors
    bool cancellable = true;
    steady_clock::time_point started;
    std::unique_ptr<asio::steady_timer> timer;
    Done done;
    std::vector<std::string> progress;
  };

  Impl(const net::Executor& ex, http::CurlMulti& m, McpServerConfig c, OnToolsChanged t, OnState s)
      : strand(asio::make_strand(ex)),
        multi(m),
        config(std::move(c)),
        on_tools_changed(std::move(t)),
        on_state(std::move(s)),
        restart_timer(strand),
        ping_timer(strand),
        backoff(config.restart_initial) {}

  asio::strand<net::Executor> strand;
  http::CurlMulti& multi;
  const McpServerConfig config;
  OnToolsChanged on_tools_changed;
  OnState on_state;

  std::atomic<State> state{State::down};
  std::atomic<pid_t> pid{0};
  std::string why;  // the reason given with the last state change
  std::vector<McpTool> tools;

  bool running = false;     // between start() and stop()
  uint64_t generation = 0;  // one per connection attempt: events of older ones are dropped
  std::shared_ptr<Transport> transport;
  std::map<uint64_t, std::shared_ptr<Transport>> closing;  // closed, not yet gone
  uint64_t next_closing = 0;
  std::vector<std::function<void()>> stop_waiters;
  std::string protocol_version;

  int64_t next_id = 1;
  std::map<int64_t, Pending> pending;

  bool listing = false;
  bool relist_wanted = false;

  // notifications/message rate limit: messages logged in the current minute, and dropped.
  steady_clock::time_point log_window = steady_clock::now();
  int log_logged = 0;
  size_t log_dropped = 0;

  asio::steady_timer restart_timer;
  asio::steady_timer ping_timer;  // liveness, while ready
  milliseconds backoff;
  std::deque<steady_clock::time_point> crashes;
  steady_clock::time_point ready_since;

  // ---- state ----

  void set_state(State s, std::string reason) {
    bool same = state.load() == s && why == reason;
    state = s;
    why = std::move(reason);
    if (same) return;
    if (s == State::ready || s == State::starting) {
      spdlog::info("mcp server '{}': {}{}{}", config.name, to_string(s), why.empty() ? "" : ": ",
                   why);
    } else {
      spdlog::warn("mcp server '{}': {}{}{}", config.name, to_string(s), why.empty() ? "" : ": ",
                   why);
    }
    if (!on_state) return;
    // The callbacks are the owner's code: a throw is logged here rather than unwinding the
    // io_context's run().
    try {
      on_state(s, why);
    } catch (const std::exception& e) {
      spdlog::error("mcp server '{}': on_state callback failed: {}", config.name, e.what());
    }
  }

  void set_tools(std::vector<McpTool> t) {
    tools = std::move(t);
    if (!on_tools_changed) return;
    try {
      on_tools_changed(tools);
    } catch (const std::exception& e) {
      spdlog::error("mcp server '{}': on_tools_changed callback failed: {}", config.name, e.what());
    }
  }

  void withdraw_tools() {
    if (!tools.empty()) set_tools({});
  }

  // ---- requests ----

  int64_t request(const std::string& method, json params, steady_clock::time_point deadline,
                  std::string what, bool with_progress, Done done) {
    int64_t id = next_id++;
    json msg = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
    if (with_progress) params["_meta"]["progressToken"] = id;
    if (!params.is_null()) msg["params"] = std::move(params);
    Pending p;
    p.what = std::move(what);
    p.cancellable = method != "initialize";  // the spec forbids cancelling initialize
    p.started = steady_clock::now();
    p.timer = std::make_unique<asio::steady_timer>(strand);
    p.timer->expires_at(deadline);
    p.timer->async_wait([weak = weak_from_this(), id](boost::system::error_code ec) {
      if (ec) return;
      if (auto self = weak.lock()) self->give_up(id, ErrorCode::deadline_exceeded);
    });
    p.done = std::move(done);
    pending.emplace(id, std::move(p));
    transport->send(std::move(msg), deadline);
    return id;
  }

  void complete(int64_t id, Result<json> r) {
    auto it = pending.find(id);
    if (it == pending.end()) return;
    Pending p = std::move(it->second);
    pending.erase(it);
    p.timer->cancel();
    p.done(std::move(r), std::move(p.progress));
  }

  // The caller stops waiting (deadline or cancellation); the server is told so that it can
  // stop working.
  void give_up(int64_t id, ErrorCode code) {
    auto it = pending.find(id);
    if (it == pending.end()) return;
    auto waited =
        std::chrono::duration_cast<milliseconds>(steady_clock::now() - it->second.started);
    std::string reason = code == ErrorCode::deadline_exceeded ? "deadline passed" : "cancelled";
    if (it->second.cancellable && transport) {
      send_notification("notifications/cancelled", {{"requestId", id}, {"reason", reason}});
    }
    std::string msg = code == ErrorCode::deadline_exceeded
                          ? "mcp server '" + config.name + "': " + it->second.what +
                                " got no answer within " + std::to_string(waited.count()) +
                                " ms (deadline)"
                          : "mcp server '" + config.name + "': " + it->second.what +
                                " cancelled after " + std::to_string(waited.count()) + " ms";
    complete(id, fail(code, std::move(msg)));
  }

  void fail_all(ErrorCode code, const std::string& reason) {
    auto ids = std::vector<int64_t>();
    for (const auto& [id, p] : pending) ids.push_back(id);
    for (int64_t id : ids) {
      auto it = pending.find(id);
      if (it == pending.end()) continue;
      std::string what = it->second.what;
      std::string message = "mcp server '" + config.name + "': ";
      message += what;
      message += ": ";
      message += reason;
      complete(id, fail(code, std::move(message)));
    }
  }

  void send_notification(const std::string& method, json params) {
    if (!transport) return;
    json msg = {{"jsonrpc", "2.0"}, {"method", method}};
    if (!params.is_null()) msg["params"] = std::move(params);
    transport->send(std::move(msg), steady_clock::now() + std::chrono::seconds(10));
  }

  // ---- messages from the server ----

  void on_message(uint64_t gen, json m) {
    if (gen != generation) return;
    auto method = m.find("method");
    if (method != m.end() && method->is_string()) {
      const auto& name = method->get_ref<const std::string&>();
      if (m.contains("id")) {
        on_server_request(name, m["id"]);
      } else {
        auto params = m.find("params");
        on_notification(name, params != m.end() ? *params : json::object());
      }
      return;
    }
    auto id = m.find("id");
    if (id == m.end() || !id->is_number_integer()) {
      spdlog::warn(
          "mcp server '{}': a message that is neither request, notification nor an "
          "answer to ours, skipped: {:.120}",
          config.name, m.dump(-1, ' ', false, json::error_handler_t::replace));
      return;
    }
    int64_t n = id->get<int64_t>();
    auto it = pending.find(n);
    if (it == pending.end()) return;  // answered after its deadline: nobody waits for it
    if (auto e = m.find("error"); e != m.end()) {
      auto c = e->find("code");
      int code = c != e->end() && c->is_number_integer() ? c->get<int>() : 0;
      std::string text = string_field(*e, "message");
      ErrorCode ec = code == -32601   ? ErrorCode::not_found
                     : code == -32602 ? ErrorCode::invalid_argument
                                      : ErrorCode::internal;
      complete(n, fail(ec, "mcp server '" + config.name + "': " + it->second.what + " failed: " +
                               text + " (JSON-RPC error " + std::to_string(code) + ")"));
      return;
    }
    auto result = m.find("result");
    complete(n, result != m.end() ? *result : json::object());
  }

  void on_server_request(const std::string& method, const json& id) {
    if (!transport) return;
    json reply = {{"jsonrpc", "2.0"}, {"id", id}};
    if (method == "ping") {
      reply["result"] = json::object();
    } else {
      // We offer no roots, sampling or elicitation: say so rather than leave it waiting.
      reply["error"] = {{"code", -32601}, {"message", "Method not found: " + method}};
    }
    transport->send(std::move(reply), steady_clock::now() + std::chrono::seconds(10));
  }

  void on_notification(const std::string& method, const json& params) {
    if (method == "notifications/progress") {
      auto token = params.find("progressToken");
      if (token == params.end() || !token->is_number_integer()) return;
      auto it = pending.find(token->get<int64_t>());
      if (it == pending.end()) return;
      std::string line;
      if (auto p = params.find("progress"); p != params.end() && p->is_number()) {
        line = p->dump();
        if (auto t = params.find("total"); t != params.end() && t->is_number()) {
          line += "/" + t->dump();
        }
      }
      std::string message = string_field(params, "message");
      if (!message.empty()) line += (line.empty() ? "" : " ") + message;
      if (it->second.progress.size() < 1000) it->second.progress.push_back(std::move(line));
    } else if (method == "notifications/message") {
      std::string level = string_field(params, "level");
      std::string text = params.contains("data")
                             ? (params["data"].is_string() ? params["data"].get<std::string>()
                                                           : params["data"].dump())
                             : std::string();
      auto lvl =
          (level == "error" || level == "critical" || level == "alert" || level == "emergency")
              ? spdlog::level::warn
              : spdlog::level::info;
      // A chatty server must not flood parley's log: the stderr budget applies here too.
      auto now = steady_clock::now();
      if (now - log_window >= std::chrono::minutes(1)) {
        if (log_dropped > 0) {
          spdlog::warn("mcp server '{}': {} log messages not logged (over {} a minute)",
                       config.name, log_dropped, config.max_stderr_lines_per_minute);
        }
        log_window = now;
        log_logged = 0;
        log_dropped = 0;
      }
      if (log_logged >= config.max_stderr_lines_per_minute) {
        ++log_dropped;
        return;
      }
      ++log_logged;
      spdlog::log(lvl, "mcp server '{}' log ({}): {:.500}", config.name, level, text);
    } else if (method == "notifications/tools/list_changed") {
      if (state.load() == State::ready) {
        list_tools(false);
      } else {
        relist_wanted = true;
      }
    }
  }

  void on_send_failed(uint64_t gen, const json& id, Error e) {
    if (gen != generation || !id.is_number_integer()) return;
    complete(id.get<int64_t>(), fail(std::move(e)));
  }

  // ---- lifecycle ----

  void connect() {
    ++generation;
    uint64_t gen = generation;
    set_state(State::starting, "connecting");
    TransportEvents events;
    std::weak_ptr<Impl> weak = weak_from_this();
    events.on_message = [weak, gen](json m) {
      if (auto self = weak.lock()) self->on_message(gen, std::move(m));
    };
    events.on_closed = [weak, gen](const std::string& reason, bool expired) {
      if (auto self = weak.lock()) self->on_closed(gen, reason, expired);
    };
    events.on_send_failed = [weak, gen](const json& id, Error e) {
      if (auto self = weak.lock()) self->on_send_failed(gen, id, std::move(e));
    };
    if (config.transport == McpServerConfig::Transport::stdio) {
      transport = std::make_shared<StdioTransport>(strand, config, std::move(events));
    } else {
      transport = std::make_shared<HttpTransport>(strand, multi, config, std::move(events));
    }
    if (Status s = transport->open(); !s) {
      transport.reset();
      crashed(s.error().message, false);
      return;
    }
    pid = transport->pid();
    json params = {{"protocolVersion", std::string(kProtocolVersions[0])},
                   {"capabilities", json::object()},
                   {"clientInfo", {{"name", "parley"}, {"version", PARLEY_VERSION}}}};
    request("initialize", std::move(params), steady_clock::now() + config.init_timeout,
            "initialize", false, [weak, gen](Result<json> r, const std::vector<std::string>&) {
              auto self = weak.lock();
              if (!self || gen != self->generation) return;
              self->initialized(std::move(r));
            });
  }

  void initialized(Result<json> r) {
    if (!r) {
      abandon(r.error().message);
      return;
    }
    std::string version = string_field(*r, "protocolVersion");
    bool known = std::any_of(std::begin(kProtocolVersions), std::end(kProtocolVersions),
                             [&](std::string_view v) { return v == version; });
    if (!known) {
      std::string ours;
      for (auto v : kProtocolVersions) ours += (ours.empty() ? "" : ", ") + std::string(v);
      // Retrying cannot help: broken until reconfigured.
      close_transport();
      withdraw_tools();
      set_state(State::broken,
                "the server speaks MCP revision '" + version + "'; parley speaks " + ours);
      return;
    }
    protocol_version = version;
    transport->set_protocol_version(version);
    auto info_it = r->find("serverInfo");
    json info = info_it != r->end() ? *info_it : json::object();
    spdlog::info("mcp server '{}': {} {} speaks MCP {}", config.name, string_field(info, "name"),
                 string_field(info, "version"), version);
    send_notification("notifications/initialized", nullptr);
    list_tools(true);
  }

  void list_tools(bool first) {
    if (listing) {
      relist_wanted = true;
      return;
    }
    listing = true;
    relist_wanted = false;
    list_page(first, generation, {}, std::string(), 0);
  }

  void list_page(bool first, uint64_t gen, std::vector<McpTool> so_far, const std::string& cursor,
                 int page) {
    json params = json::object();
    if (!cursor.empty()) params["cursor"] = cursor;
    request("tools/list", std::move(params), steady_clock::now() + config.init_timeout,
            "tools/list", false,
            [weak = weak_from_this(), first, gen, so_far = std::move(so_far), page](
                Result<json> r, const std::vector<std::string>&) mutable {
              auto self = weak.lock();
              if (!self || gen != self->generation) return;
              self->listed_page(first, gen, std::move(so_far), page, std::move(r));
            });
  }

  void listed_page(bool first, uint64_t gen, std::vector<McpTool> so_far, int page,
                   Result<json> r) {
    if (!r) {
      listing = false;
      if (first) {
        abandon(r.error().message);
      } else {
        spdlog::warn("{}; keeping the tools listed before", r.error().message);
      }
      return;
    }
    if (auto list = r->find("tools"); list != r->end() && list->is_array()) {
      for (const auto& t : *list) {
        if (auto tool = read_tool(t)) so_far.push_back(std::move(*tool));
      }
    }
    std::string next = string_field(*r, "nextCursor");
    if (!next.empty()) {
      if (page + 1 >= config.max_tool_pages) {
        spdlog::warn(
            "mcp server '{}': tools/list still has more after {} pages: using the {} "
            "tools read",
            config.name, page + 1, so_far.size());
      } else {
        list_page(first, gen, std::move(so_far), std::move(next), page + 1);
        return;
      }
    }
    listing = false;
    if (first) {
      ready_since = steady_clock::now();
      set_tools(std::move(so_far));
      set_state(State::ready, std::to_string(tools.size()) + " tools, MCP " + protocol_version);
      arm_ping(gen);
    } else {
      spdlog::info("mcp server '{}': tool list changed: {} tools", config.name, so_far.size());
      set_tools(std::move(so_far));
    }
    if (relist_wanted) list_tools(false);
  }

  std::optional<McpTool> read_tool(const json& t) {
    if (!t.is_object() || !t.contains("name") || !t["name"].is_string() ||
        t["name"].get_ref<const std::string&>().empty()) {
      spdlog::warn("mcp server '{}': a tool without a name in tools/list, skipped", config.name);
      return std::nullopt;
    }
    McpTool tool;
    tool.name = t["name"].get<std::string>();
    tool.title = string_field(t, "title");
    tool.description = string_field(t, "description");
    if (auto s = t.find("inputSchema"); s != t.end() && s->is_object()) {
      tool.input_schema = *s;
    } else {
      tool.input_schema = {{"type", "object"}};
    }
    if (auto a = t.find("annotations"); a != t.end() && a->is_object()) {
      auto hint = [&](const char* key) -> std::optional<bool> {
        auto h = a->find(key);
        if (h == a->end() || !h->is_boolean()) return std::nullopt;
        return h->get<bool>();
      };
      tool.read_only = hint("readOnlyHint");
      tool.destructive = hint("destructiveHint");
      tool.idempotent = hint("idempotentHint");
      tool.open_world = hint("openWorldHint");
      if (tool.title.empty()) tool.title = string_field(*a, "title");
    }
    return tool;
  }

  // The transport is dropped gracefully (the child stopped and reaped in the background);
  // stop() waits for every such close.
  void close_transport() {
    pid = 0;
    if (!transport) return;
    uint64_t key = ++next_closing;
    closing.emplace(key, transport);
    auto t = std::move(transport);
    transport.reset();
    t->close([weak = weak_from_this(), key] {
      if (auto self = weak.lock()) {
        self->closing.erase(key);
        self->check_stopped();
      }
    });
  }

  // A connection attempt failed (initialize or the first tools/list): the server is closed
  // and counts as crashed.
  void abandon(const std::string& reason) {
    ++generation;  // its late events are not ours any more
    close_transport();
    crashed(reason, false);
  }

  void on_closed(uint64_t gen, const std::string& reason, bool expired) {
    if (gen != generation) return;
    ++generation;
    // Closed all the same: an HTTP transport's event stream is ended, a child is long reaped.
    close_transport();
    crashed(reason, expired);
  }

  // The next liveness ping of connection `gen`, ping_interval from now.
  void arm_ping(uint64_t gen) {
    if (config.ping_interval.count() <= 0) return;
    ping_timer.expires_after(config.ping_interval);
    ping_timer.async_wait([weak = weak_from_this(), gen](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || !self->running || gen != self->generation || !self->transport ||
          self->state.load() != State::ready) {
        return;
      }
      self->request("ping", nullptr, steady_clock::now() + self->config.ping_timeout, "ping", false,
                    [weak, gen](Result<json> r, const std::vector<std::string>&) {
                      auto me = weak.lock();
                      if (!me || gen != me->generation || !me->running) return;
                      if (!r && r.error().code == ErrorCode::deadline_exceeded) {
                        // Hung: closed and restarted like a crashed server.
                        me->on_closed(gen,
                                      "it did not answer a ping within " +
                                          std::to_string(me->config.ping_timeout.count()) + " ms",
                                      false);
                        return;
                      }
                      me->arm_ping(gen);
                    });
    });
  }

  void crashed(const std::string& reason, bool expired) {
    ping_timer.cancel();
    fail_all(ErrorCode::unavailable, "the server went away: " + reason);
    listing = false;
    withdraw_tools();
    if (!running) return;
    auto now = steady_clock::now();
    if (state.load() == State::ready && now - ready_since >= config.restart_max) {
      backoff = config.restart_initial;  // it had been healthy for a while
    }
    crashes.push_back(now);
    while (!crashes.empty() && now - crashes.front() > config.breaker_window) crashes.pop_front();
    if (static_cast<int>(crashes.size()) >= config.breaker_crashes) {
      set_state(State::broken, reason + "; " + std::to_string(crashes.size()) +
                                   " failures within " +
                                   std::to_string(config.breaker_window.count() / 1000) +
                                   " s: not restarted until reset");
      return;
    }
    // An expired HTTP session is renewed at once; anything else waits.
    milliseconds delay = expired ? milliseconds(0) : backoff;
    if (!expired) backoff = std::min(backoff * 2, config.restart_max);
    set_state(State::down, reason + "; restarting in " + std::to_string(delay.count()) + " ms");
    restart_timer.expires_after(delay);
    restart_timer.async_wait(
        [weak = weak_from_this(), gen = generation](boost::system::error_code ec) {
          auto self = weak.lock();
          if (ec || !self || !self->running || gen != self->generation) return;
          self->connect();
        });
  }

  void start() {
    if (running) return;
    running = true;
    backoff = config.restart_initial;
    connect();
  }

  void reset() {
    crashes.clear();
    backoff = config.restart_initial;
    restart_timer.cancel();
    ping_timer.cancel();
    ++generation;
    fail_all(ErrorCode::unavailable, "the client was reset");
    close_transport();
    withdraw_tools();
    running = true;
    connect();
  }

  void stop(std::function<void()> done) {
    running = false;
    restart_timer.cancel();
    ping_timer.cancel();
    ++generation;
    fail_all(ErrorCode::cancelled, "the client stopped");
    listing = false;
    withdraw_tools();
    close_transport();
    if (state.load() != State::down || why != "stopped") set_state(State::down, "stopped");
    stop_waiters.push_back(std::move(done));
    check_stopped();
  }

  void check_stopped() {
    if (!closing.empty() || transport) return;
    auto waiters = std::move(stop_waiters);
    stop_waiters.clear();
    for (auto& w : waiters) w();
  }

  void start_call(std::string tool, json arguments, steady_clock::time_point deadline,
                  const std::shared_ptr<McpCancel>& cancel,
                  std::function<void(Result<McpCallResult>)> done) {
    if (state.load() != State::ready || !transport) {
      done(fail(ErrorCode::unavailable, "mcp server '" + config.name + "' is not ready (" +
                                            std::string(to_string(state.load())) +
                                            (why.empty() ? "" : ": " + why) + ")"));
      return;
    }
    if (std::none_of(tools.begin(), tools.end(),
                     [&](const McpTool& t) { return t.name == tool; })) {
      done(fail(ErrorCode::not_found,
                "mcp server '" + config.name + "' has no tool '" + tool + "'"));
      return;
    }
    if (cancel && cancel->cancelled()) {
      done(fail(ErrorCode::cancelled, "mcp server '" + config.name + "': tools/call " + tool +
                                          " cancelled before it was sent"));
      return;
    }
    if (deadline == steady_clock::time_point::max()) {
      deadline = steady_clock::now() + config.call_timeout;
    }
    if (arguments.is_null()) arguments = json::object();
    auto key = std::make_shared<uint64_t>(0);
    json params = {{"name", tool}, {"arguments", std::move(arguments)}};
    int64_t id = request("tools/call", std::move(params), deadline, "tools/call " + tool, true,
                         [cancel, key, max = config.max_result_bytes, done = std::move(done)](
                             Result<json> r, std::vector<std::string> progress) {
                           if (cancel) cancel->forget(*key);
                           if (!r) {
                             done(fail(std::move(r).error()));
                             return;
                           }
                           McpCallResult result = read_call_result(*r, max);
                           result.progress = std::move(progress);
                           done(std::move(result));
                         });
    if (cancel) {
      *key = cancel->watch([weak = weak_from_this(), strand = strand, id] {
        asio::post(strand, [weak, id] {
          if (auto self = weak.lock()) self->give_up(id, ErrorCode::cancelled);
        });
      });
    }
  }

  void start_ping(milliseconds timeout, std::function<void(Status)> done) {
    if (!transport || state.load() != State::ready) {
      done(fail(ErrorCode::unavailable, "mcp server '" + config.name + "' is not ready (" +
                                            std::string(to_string(state.load())) + ")"));
      return;
    }
    request("ping", nullptr, steady_clock::now() + timeout, "ping", false,
            [done = std::move(done)](Result<json> r, const std::vector<std::string>&) {
              if (!r) {
                done(fail(std::move(r).error()));
              } else {
                done(Status{});
              }
            });
  }

  // The destructor's last resort: no thread runs the strand any more.
  void kill_now() {
    running = false;
    if (transport) transport->kill_now();
    for (auto& [key, t] : closing) t->kill_now();
  }
};

namespace {

// Runs `start(impl, done)` on the client's strand and resumes the awaiting coroutine on its
// own executor with what `done` received. Not a coroutine itself: GCC 12 destroyed the
// by-value parameters of a coroutine version twice.
template <typename T, typename Start>
asio::awaitable<T> on_strand(const std::shared_ptr<McpClient::Impl>& impl, Start start) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(T)>(
      [impl](auto handler, Start st) {
        // As in http::async_fetch: the handler is moved out of its slot, and the slot emptied,
        // before it runs.
        using Handler = decltype(handler);
        net::Executor ex = asio::get_associated_executor(handler);
        auto slot = std::make_shared<std::optional<Handler>>(std::move(handler));
        std::function<void(T)> done = [slot, ex](T value) {
          asio::post(ex, [slot, value = std::move(value)]() mutable {
            Handler h = std::move(**slot);
            slot->reset();
            std::move(h)(std::move(value));
          });
        };
        asio::post(impl->strand, [impl, st = std::move(st), done = std::move(done)]() mutable {
          st(*impl, std::move(done));
        });
      },
      asio::use_awaitable, std::move(start));
}

}  // namespace

McpClient::McpClient(const net::Executor& executor, http::CurlMulti& multi, McpServerConfig config,
                     OnToolsChanged on_tools_changed, OnState on_state)
    : impl_(std::make_shared<Impl>(executor, multi, std::move(config), std::move(on_tools_changed),
                                   std::move(on_state))) {}

McpClient::~McpClient() { impl_->kill_now(); }

void McpClient::start() {
  asio::post(impl_->strand, [impl = impl_] { impl->start(); });
}

void McpClient::reset() {
  asio::post(impl_->strand, [impl = impl_] { impl->reset(); });
}

asio::awaitable<void> McpClient::stop() {
  auto start = [](Impl& impl, std::function<void(bool)> done) {
    impl.stop([done = std::move(done)] { done(true); });
  };
  bool stopped = co_await on_strand<bool>(impl_, std::move(start));
  (void)stopped;
}

McpClient::State McpClient::state() const { return impl_->state.load(); }
pid_t McpClient::child_pid() const { return impl_->pid.load(); }
const std::vector<McpTool>& McpClient::tools() const { return impl_->tools; }

asio::awaitable<Result<McpCallResult>> McpClient::call(std::string tool, json arguments,
                                                       steady_clock::time_point deadline,
                                                       std::shared_ptr<McpCancel> cancel) {
  auto start = [tool = std::move(tool), arguments = std::move(arguments), deadline,
                cancel = std::move(cancel)](
                   Impl& impl, std::function<void(Result<McpCallResult>)> done) mutable {
    impl.start_call(std::move(tool), std::move(arguments), deadline, cancel, std::move(done));
  };
  Result<McpCallResult> r = co_await on_strand<Result<McpCallResult>>(impl_, std::move(start));
  co_return r;
}

asio::awaitable<Status> McpClient::ping(milliseconds timeout) {
  auto start = [timeout](Impl& impl, std::function<void(Status)> done) {
    impl.start_ping(timeout, std::move(done));
  };
  Status s = co_await on_strand<Status>(impl_, std::move(start));
  co_return s;
}

}  // namespace parley::bot::mcp
