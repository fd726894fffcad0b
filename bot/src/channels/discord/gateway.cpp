#include "channels/discord/gateway.h"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <deque>
#include <random>

#include "channels/discord/events.h"

namespace parley::bot::channels::discord {

namespace asio = net::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using SteadyClock = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             SteadyClock::now().time_since_epoch())
      .count();
}

double uniform01() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

struct Url {
  bool tls = true;
  std::string host;
  std::string port;
  std::string target;  // path and query
};

// wss://HOST[:PORT][/PATH]; ws:// only to a loopback address. The query parley needs is added.
std::optional<Url> parse_url(const std::string& url, std::string& why) {
  Url u;
  std::string rest;
  if (url.rfind("wss://", 0) == 0) {
    rest = url.substr(6);
  } else if (url.rfind("ws://", 0) == 0) {
    u.tls = false;
    rest = url.substr(5);
  } else {
    why = "expected a wss:// gateway URL";
    return std::nullopt;
  }
  const size_t slash = rest.find_first_of("/?");
  const std::string authority = rest.substr(0, slash);
  std::string path = slash == std::string::npos ? "/" : rest.substr(slash);
  if (path.front() == '?') path = "/" + path;
  const size_t colon = authority.rfind(':');
  u.host = authority.substr(0, colon);
  u.port = colon == std::string::npos ? (u.tls ? "443" : "80") : authority.substr(colon + 1);
  if (u.host.empty()) {
    why = "no host in the gateway URL";
    return std::nullopt;
  }
  if (!u.tls && u.host != "localhost" && u.host.rfind("127.", 0) != 0 && u.host != "[::1]") {
    why = "plain ws:// is allowed only to a loopback address";
    return std::nullopt;
  }
  const size_t q = path.find('?');
  u.target = path.substr(0, q) + "?v=10&encoding=json";
  return u;
}

}  // namespace

nlohmann::json GatewaySession::to_json() const {
  return {{"session_id", session_id}, {"resume_url", resume_url}, {"seq", seq}};
}

GatewaySession GatewaySession::from_json(const nlohmann::json& j) {
  GatewaySession s;
  if (!j.is_object()) return s;
  s.session_id = j.value("session_id", "");
  s.resume_url = j.value("resume_url", "");
  s.seq = j.value("seq", int64_t{0});
  return s;
}

std::string_view to_string(ShardState s) noexcept {
  switch (s) {
    case ShardState::starting: return "starting";
    case ShardState::connecting: return "connecting";
    case ShardState::identifying: return "identifying";
    case ShardState::resuming: return "resuming";
    case ShardState::ready: return "ready";
    case ShardState::backing_off: return "backing_off";
    case ShardState::stopped: return "stopped";
    case ShardState::failed: return "failed";
  }
  return "unknown";
}

std::string fatal_close(int code) {
  switch (code) {
    case 4004:
      return "authentication failed (4004): the bot token was refused; set a valid token in "
             "DISCORD_TOKEN (Developer Portal → your application → Bot → Reset Token)";
    case 4010: return "invalid shard (4010): check channels.discord.shards (ids below count)";
    case 4011:
      return "sharding required (4011): the bot is in too many guilds for one shard; set "
             "channels.discord.shards to auto";
    case 4012: return "invalid API version (4012): parley speaks gateway v10";
    case 4013: return "invalid intents (4013): check channels.discord.intents";
    case 4014:
      return "disallowed intents (4014): a privileged intent is asked for but not enabled; "
             "switch it on in the Developer Portal (your application → Bot → Privileged Gateway "
             "Intents, e.g. MESSAGE CONTENT INTENT) or remove it from channels.discord.intents";
    default: return {};
  }
}

// One WebSocket connection of a shard: reads events, beats, sends IDENTIFY or RESUME, and ends
// with what the shard should do next. Lives on the shard's strand.
template <class Ws>
class Connection : public std::enable_shared_from_this<Connection<Ws>> {
 public:
  template <class... Args>
  Connection(Shard& shard, Args&&... args)
      : shard_(shard),
        ws_(std::forward<Args>(args)...),
        beat_(shard.strand_),
        kill_(shard.strand_) {}

  Ws& ws() { return ws_; }

  asio::awaitable<Shard::Outcome> serve() {
    auto self = this->shared_from_this();
    shard_.close_now_ = [weak = std::weak_ptr<Connection>(self)] {
      if (auto c = weak.lock()) c->close(4000, Shard::Next::stop, "stopping");
    };
    beast::flat_buffer buffer;
    for (;;) {
      error_code ec;
      co_await ws_.async_read(buffer, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (!decided_) {
          if (ec == websocket::error::closed) {
            const int code = static_cast<int>(ws_.reason().code);
            decide_close(code);
          } else {
            outcome_.next = Shard::Next::resume;
            outcome_.why = ec.message();
          }
        }
        break;
      }
      const std::string text = beast::buffers_to_string(buffer.data());
      buffer.consume(buffer.size());
      shard_.last_event_ms_ = steady_ms();
      auto frame = read_gateway_frame(text);
      if (!frame) {
        spdlog::warn("discord shard {}: a gateway message that is not a JSON object ({} bytes)",
                     shard_.setup_.id, text.size());
        continue;
      }
      on_message(*frame);
    }
    beat_.cancel();
    kill_.cancel();
    shard_.close_now_ = nullptr;
    co_return outcome_;
  }

 private:
  void on_message(const GatewayFrame& frame) {
    const nlohmann::json& d = frame.d;
    switch (frame.op) {
      case 0: {  // dispatch
        if (frame.seq) shard_.session_.seq = *frame.seq;
        const std::string& type = frame.type;
        if (type == "READY" && d.is_object()) {
          shard_.session_.session_id = json_string(d, "session_id");
          shard_.session_.resume_url = json_string(d, "resume_gateway_url");
          outcome_.reached_ready = true;
          shard_.state_ = ShardState::ready;
          spdlog::info("discord shard {}/{}: ready", shard_.setup_.id, shard_.setup_.count);
        } else if (type == "RESUMED") {
          outcome_.reached_ready = true;
          shard_.state_ = ShardState::ready;
          shard_.resumes_.fetch_add(1);
          spdlog::info("discord shard {}/{}: resumed at {}", shard_.setup_.id, shard_.setup_.count,
                       shard_.session_.seq);
        }
        if (shard_.hooks_.on_dispatch) shard_.hooks_.on_dispatch(type, d);
        if (shard_.hooks_.on_session) shard_.hooks_.on_session(shard_.session_);
        break;
      }
      case 1: send_heartbeat(); break;  // the server asks for one now
      case 7:                           // reconnect and resume
        close(4000, Shard::Next::resume, "op 7 reconnect");
        break;
      case 9: {  // invalid session
        const bool resumable = d.is_boolean() && d.get<bool>();
        if (!resumable) {
          shard_.session_ = {};
          if (shard_.hooks_.on_session) shard_.hooks_.on_session(shard_.session_);
        }
        close(4000, resumable ? Shard::Next::resume : Shard::Next::identify,
              resumable ? "op 9 (resumable)" : "op 9 (a new session)");
        break;
      }
      case 10: {  // hello
        const auto interval = heartbeat_interval(d);
        asio::co_spawn(shard_.strand_, beat(this->shared_from_this(), interval), asio::detached);
        greet();
        break;
      }
      case 11: {  // heartbeat ACK
        acked_ = true;
        shard_.ack_latency_ms_ =
            std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - beat_sent_)
                .count();
        break;
      }
      default: break;
    }
  }

  // IDENTIFY or RESUME, after HELLO (a RESUME before HELLO misses replayed events).
  void greet() {
    const auto& s = shard_.setup_;
    if (!shard_.session_.empty()) {
      shard_.state_ = ShardState::resuming;
      send({{"op", 6},
            {"d",
             {{"token", s.token},
              {"session_id", shard_.session_.session_id},
              {"seq", shard_.session_.seq}}}});
      return;
    }
    // (The IDENTIFY slot was taken before connecting: see Shard::run.)
    shard_.state_ = ShardState::identifying;
    shard_.identifies_.fetch_add(1);
    send({{"op", 2},
          {"d",
           {{"token", s.token},
            {"intents", s.intents},
            {"shard", {s.id, s.count}},
            {"large_threshold", 50},
            {"properties", {{"os", "linux"}, {"browser", "parley"}, {"device", "parley"}}}}}});
  }

  static asio::awaitable<void> beat(std::shared_ptr<Connection> self,
                                    std::chrono::milliseconds interval) {
    auto first = std::chrono::duration_cast<std::chrono::milliseconds>(interval * uniform01());
    self->beat_.expires_after(first);
    for (;;) {
      error_code ec;
      co_await self->beat_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (ec || self->decided_) co_return;
      if (!self->acked_) {
        self->shard_.zombies_.fetch_add(1);
        spdlog::warn(
            "discord shard {}: no heartbeat ACK within {} ms: a zombie connection; "
            "reconnecting to resume",
            self->shard_.setup_.id, interval.count());
        self->close(4000, Shard::Next::resume, "zombie (no heartbeat ACK)");
        co_return;
      }
      self->send_heartbeat();
      self->beat_.expires_after(interval);
    }
  }

  void send_heartbeat() {
    acked_ = false;
    beat_sent_ = SteadyClock::now();
    const nlohmann::json seq =
        shard_.session_.seq > 0 ? nlohmann::json(shard_.session_.seq) : nlohmann::json();
    send({{"op", 1}, {"d", seq}}, true);
  }

  void send(const nlohmann::json& payload, bool heartbeat = false) {
    if (decided_) return;
    out_.push_back(Outgoing{payload.dump(), heartbeat});
    if (!writing_) {
      writing_ = true;
      asio::co_spawn(shard_.strand_, write_all(this->shared_from_this()), asio::detached);
    }
  }

  static asio::awaitable<void> write_all(std::shared_ptr<Connection> self) {
    while (!self->out_.empty() && !self->decided_) {
      const Outgoing next = self->out_.front();
      self->out_.pop_front();
      if (!next.heartbeat) {
        // Discord closes a connection that sends more than 120 events a minute.
        auto& w = self->window_;
        const auto now = SteadyClock::now();
        while (!w.empty() && w.front() <= now - std::chrono::seconds(60)) w.pop_front();
        if (w.size() >= 115) {
          asio::steady_timer t(self->shard_.strand_, w.front() + std::chrono::seconds(60));
          error_code ec;
          co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        w.push_back(SteadyClock::now());
      }
      error_code ec;
      self->ws_.text(true);
      co_await self->ws_.async_write(asio::buffer(next.text),
                                     asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        self->close(4000, Shard::Next::resume, "write failed: " + ec.message());
        break;
      }
    }
    self->writing_ = false;
  }

  // Ends the connection with `code` (never 1000/1001 unless the session should end) and decides
  // what comes next; the TCP connection is cut if the close handshake does not finish in 2 s.
  void close(int code, Shard::Next next, const std::string& why) {
    if (decided_) return;
    decided_ = true;
    outcome_.next = next;
    outcome_.why = why;
    beat_.cancel();
    auto self = this->shared_from_this();
    ws_.async_close(websocket::close_reason(static_cast<uint16_t>(code)), [self](error_code) {});
    kill_.expires_after(std::chrono::seconds(2));
    kill_.async_wait([self](error_code ec) {
      if (ec) return;
      error_code ignored;
      beast::get_lowest_layer(self->ws_).socket().close(ignored);
    });
  }

  void decide_close(int code) {
    outcome_.close_code = code;
    if (const std::string line = fatal_close(code); !line.empty()) {
      outcome_.next = Shard::Next::fail;
      outcome_.why = line;
    } else if (code == 4003 || code == 4007 || code == 4009) {
      outcome_.next = Shard::Next::identify;
      outcome_.why = fmt::format("closed with {} (a new session is needed)", code);
    } else {
      outcome_.next = Shard::Next::resume;
      outcome_.why = fmt::format("closed with {}", code);
    }
  }

  struct Outgoing {
    std::string text;
    bool heartbeat = false;
  };
  Shard& shard_;
  Ws ws_;
  asio::steady_timer beat_;
  asio::steady_timer kill_;
  std::deque<Outgoing> out_;
  std::deque<SteadyClock::time_point> window_;
  bool writing_ = false;
  bool decided_ = false;
  bool acked_ = true;
  SteadyClock::time_point beat_sent_{};
  Shard::Outcome outcome_;
};

Shard::Shard(const net::Executor& executor, asio::ssl::context& tls, Setup setup, Hooks hooks)
    : strand_(asio::make_strand(executor)),
      tls_(tls),
      setup_(std::move(setup)),
      hooks_(std::move(hooks)),
      session_(setup_.session),
      wait_(strand_) {}

Shard::~Shard() = default;

void Shard::start() { asio::co_spawn(strand_, run(), asio::detached); }

void Shard::stop() {
  asio::dispatch(strand_, [this] {
    if (stopping_) return;
    stopping_ = true;
    wait_.cancel();
    if (close_now_) close_now_();
  });
}

ShardFigures Shard::figures() const {
  ShardFigures f;
  f.state = state_.load();
  f.last_event_ms = last_event_ms_.load();
  f.ack_latency_ms = ack_latency_ms_.load();
  f.identifies = identifies_.load();
  f.resumes = resumes_.load();
  f.reconnects = reconnects_.load();
  f.zombies = zombies_.load();
  return f;
}

asio::awaitable<Shard::Outcome> Shard::connect(const std::string& url) {
  Outcome out;
  std::string why;
  const auto u = parse_url(url, why);
  if (!u) {
    out.next = Next::fail;
    out.why = fmt::format("gateway URL {}: {}", url, why);
    co_return out;
  }
  state_ = ShardState::connecting;
  asio::ip::tcp::resolver resolver(strand_);
  error_code ec;
  const auto endpoints = co_await resolver.async_resolve(
      u->host, u->port, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    out.why = fmt::format("resolving {}: {}", u->host, ec.message());
    co_return out;
  }
  const std::string host_header = u->host + ":" + u->port;
  auto handshake = [&](auto& conn) -> asio::awaitable<bool> {
    auto& ws = conn->ws();
    ws.set_option(websocket::stream_base::timeout{std::chrono::seconds(10),
                                                  websocket::stream_base::none(), false});
    ws.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
      req.set(beast::http::field::user_agent, "DiscordBot (parley, 0.1)");
    }));
    ws.read_message_max(16u << 20);
    error_code hec;
    co_await ws.async_handshake(host_header, u->target,
                                asio::redirect_error(asio::use_awaitable, hec));
    if (hec) why = "WebSocket handshake: " + hec.message();
    co_return !hec;
  };
  if (u->tls) {
    using Stream = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;
    auto conn = std::make_shared<Connection<Stream>>(*this, strand_, tls_);
    auto& tcp = beast::get_lowest_layer(conn->ws());
    tcp.expires_after(std::chrono::seconds(10));
    co_await tcp.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      out.why = fmt::format("connecting to {}: {}", u->host, ec.message());
      co_return out;
    }
    auto& ssl = conn->ws().next_layer();
    // SSL_set_tlsext_host_name, without the macro's C cast.
    if (SSL_ctrl(ssl.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 static_cast<void*>(const_cast<char*>(u->host.c_str()))) != 1) {
      out.why = "TLS: cannot set the server name";
      co_return out;
    }
    ssl.set_verify_callback(asio::ssl::host_name_verification(u->host));
    co_await ssl.async_handshake(asio::ssl::stream_base::client,
                                 asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      out.why = fmt::format("TLS with {}: {}", u->host, ec.message());
      co_return out;
    }
    tcp.expires_never();
    const bool ok = co_await handshake(conn);
    if (!ok) {
      out.why = why;
      co_return out;
    }
    if (stopping_) co_return Outcome{Next::stop, false, 0, "stopping"};
    out = co_await conn->serve();
  } else {
    using Stream = websocket::stream<beast::tcp_stream>;
    auto conn = std::make_shared<Connection<Stream>>(*this, strand_);
    auto& tcp = beast::get_lowest_layer(conn->ws());
    tcp.expires_after(std::chrono::seconds(10));
    co_await tcp.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      out.why = fmt::format("connecting to {}: {}", u->host, ec.message());
      co_return out;
    }
    tcp.expires_never();
    const bool ok = co_await handshake(conn);
    if (!ok) {
      out.why = why;
      co_return out;
    }
    if (stopping_) co_return Outcome{Next::stop, false, 0, "stopping"};
    out = co_await conn->serve();
  }
  co_return out;
}

asio::awaitable<void> Shard::run() {
  int failures = 0;
  while (!stopping_) {
    const std::string url = !session_.empty() && !session_.resume_url.empty() ? session_.resume_url
                                                                              : setup_.gateway_url;
    // A new session waits for its IDENTIFY slot before connecting (not while connected, where
    // the wait would count against the connection).
    bool allowed = true;
    if (session_.empty() && hooks_.may_identify) {
      state_ = ShardState::identifying;
      allowed = co_await hooks_.may_identify(setup_.id);
      if (stopping_) break;
    }
    Outcome o;
    if (allowed) {
      o = co_await connect(url);
    } else {
      o.next = Next::identify;
      o.why = "IDENTIFY not allowed now";
    }
    if (stopping_) break;
    if (o.next == Next::fail) {
      state_ = ShardState::failed;
      if (hooks_.on_failed) {
        hooks_.on_failed(o.close_code, o.why);  // the owner tells the operator
      } else {
        spdlog::error("discord shard {}/{}: {}", setup_.id, setup_.count, o.why);
      }
      co_return;
    }
    if (o.next == Next::identify && !session_.empty()) {
      session_ = {};
      if (hooks_.on_session) hooks_.on_session(session_);
    }
    failures = o.reached_ready ? 0 : failures + 1;
    reconnects_.fetch_add(1);
    auto backoff = std::chrono::milliseconds(static_cast<int64_t>(1000 * uniform01()));
    if (o.next == Next::identify) backoff += std::chrono::milliseconds(1000);
    if (failures > 0) {
      const auto cap = setup_.max_backoff;
      const auto exp = std::chrono::milliseconds(500) * (int64_t{1} << std::min(failures, 10));
      backoff = std::chrono::milliseconds(static_cast<int64_t>(
          static_cast<double>(std::min(cap, exp).count()) * (0.5 + 0.5 * uniform01())));
    }
    if (failures >= 8) {
      backoff = std::chrono::minutes(5);
      spdlog::error(
          "discord shard {}/{}: {} failed connections in a row (last: {}); waiting 5 "
          "minutes before trying again",
          setup_.id, setup_.count, failures, o.why);
    } else {
      spdlog::warn("discord shard {}/{}: {}; {} in {} ms", setup_.id, setup_.count, o.why,
                   session_.empty() ? "identifying" : "resuming", backoff.count());
    }
    state_ = ShardState::backing_off;
    wait_.expires_after(backoff);
    error_code ec;
    co_await wait_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  state_ = ShardState::stopped;
}

}  // namespace parley::bot::channels::discord
