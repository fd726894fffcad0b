// Shard: one Discord gateway connection (Beast WebSocket; TLS for wss://, plain ws:// only to
// a loopback address, for tests), with explicit states: connecting → identifying or resuming →
// ready, and backing_off between connections; stopped or failed at the end.
//
// - HELLO → the first heartbeat after interval × random[0, 1), then one per interval; a server
//   op 1 is answered at once. No ACK between two beats is a zombie: closed with 4000 (never
//   1000/1001, which end the session) and resumed.
// - READY: session_id, resume_gateway_url and the last `s` are kept (and handed to the owner to
//   persist); after a drop, RESUME on the resume URL, and Discord replays what was missed.
//   op 7 → reconnect and resume; op 9 d:false and closes 4003/4007/4009 → a new session;
//   4004 and 4010–4014 → failed, with one line naming the fix; any other close → resume.
// - Reconnects back off (jittered exponential, capped at 60 s); after 8 failures in a row a
//   breaker waits 5 minutes before trying again.
// - At most 115 events per 60 s are sent (heartbeats aside); Discord closes at 120.
// The token goes into IDENTIFY and RESUME only, never into a log line or an error.
//
// Ownership: the owner keeps a Shard until stop() has been called and the io_context has
// stopped or the shard reports stopped. Thread safety: start()/stop()/figures() from any
// thread; the hooks run on the shard's strand.
#pragma once

// clang-format off
#include "parley/bot/net.h"
// clang-format on

#include <atomic>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace parley::bot::channels::discord {

struct GatewaySession {
  std::string session_id;
  std::string resume_url;  // READY's resume_gateway_url
  int64_t seq = 0;         // the last dispatch's `s`
  [[nodiscard]] bool empty() const { return session_id.empty(); }
  [[nodiscard]] nlohmann::json to_json() const;
  static GatewaySession from_json(const nlohmann::json& j);
};

enum class ShardState {
  starting,
  connecting,
  identifying,
  resuming,
  ready,
  backing_off,
  stopped,
  failed
};
std::string_view to_string(ShardState s) noexcept;

struct ShardFigures {
  ShardState state = ShardState::starting;
  int64_t last_event_ms = 0;  // steady-clock ms of the last event received (0: none yet)
  int64_t ack_latency_ms = -1;
  uint64_t identifies = 0;
  uint64_t resumes = 0;
  uint64_t reconnects = 0;
  uint64_t zombies = 0;
};

// Which gateway close codes end a shard for good, and the line for the operator; empty: none.
std::string fatal_close(int code);

class Shard {
 public:
  struct Setup {
    int id = 0;
    int count = 1;
    std::string token;  // never logged
    uint32_t intents = 0;
    std::string gateway_url;  // from GET /gateway/bot (no query)
    GatewaySession session;   // persisted: RESUME first when set
    std::chrono::milliseconds max_backoff{60'000};
  };
  struct Hooks {
    // Every dispatch (op 0), READY and RESUMED included, on the shard's strand.
    std::function<void(const std::string& type, const nlohmann::json& d)> on_dispatch;
    // The session changed (READY, every new `s`, a session dropped): the owner persists it.
    std::function<void(const GatewaySession&)> on_session;
    // Waits until this shard may IDENTIFY (max_concurrency, daily starts); false: not now.
    std::function<net::asio::awaitable<bool>(int shard)> may_identify;
    // A close that ends the shard (4004, 4010–4014): the close code and the operator's line.
    std::function<void(int code, const std::string& line)> on_failed;
  };

  Shard(const net::Executor& executor, net::asio::ssl::context& tls, Setup setup, Hooks hooks);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  void start();
  // Closes the connection (resumable: code 4000) and ends the shard. Idempotent.
  void stop();
  [[nodiscard]] ShardFigures figures() const;
  [[nodiscard]] int id() const { return setup_.id; }
  [[nodiscard]] bool stopped() const {
    const auto s = state_.load();
    return s == ShardState::stopped || s == ShardState::failed;
  }

 private:
  enum class Next { resume, identify, stop, fail };
  struct Outcome {
    Next next = Next::resume;
    bool reached_ready = false;
    int close_code = 0;
    std::string why;
  };
  template <class Ws>
  friend class Connection;

  net::asio::awaitable<void> run();
  net::asio::awaitable<Outcome> connect(const std::string& url);

  net::asio::strand<net::Executor> strand_;
  net::asio::ssl::context& tls_;
  Setup setup_;
  Hooks hooks_;
  GatewaySession session_;           // on the strand
  std::function<void()> close_now_;  // closes the current connection (strand)
  net::asio::steady_timer wait_;
  bool stopping_ = false;  // on the strand
  std::atomic<ShardState> state_{ShardState::starting};
  std::atomic<int64_t> last_event_ms_{0};
  std::atomic<int64_t> ack_latency_ms_{-1};
  std::atomic<uint64_t> identifies_{0};
  std::atomic<uint64_t> resumes_{0};
  std::atomic<uint64_t> reconnects_{0};
  std::atomic<uint64_t> zombies_{0};
};

}  // namespace parley::bot::channels::discord
