// HttpTransport: MCP's Streamable HTTP transport through the process's CurlMulti (see
// transport.h). Each JSON-RPC message is one POST (Accept: application/json,
// text/event-stream); the answer is a JSON body or an SSE stream whose `message` events carry
// responses and notifications, delivered as they arrive (progress while a call runs).
// Notifications get 202. The Mcp-Session-Id of the initialize response goes on every later
// request, and MCP-Protocol-Version once negotiated; messages sent while initialize is in
// flight wait for its session id. Once initialized, a GET opens the stream of server-initiated
// messages. A 404 on a request carrying a session id means the session
// expired: on_closed(…, expired = true). close() ends the session with DELETE.
//
// The bearer token goes into the Authorization header only: never into a log or an error.
//
// Thread safety: the client's strand only (transport.h). CurlMulti's body callbacks run on
// its own strand and only parse there; messages are posted to the client's strand.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <string>

#include "clients/mcp/transport.h"
#include "parley/bot/clients/http/curl_multi.h"
#include "parley/bot/clients/mcp/mcp_client.h"
#include "parley/bot/net.h"

namespace parley::bot::mcp {

class HttpTransport : public Transport, public std::enable_shared_from_this<HttpTransport> {
 public:
  HttpTransport(net::asio::strand<net::Executor> strand, http::CurlMulti& multi,
                McpServerConfig config, TransportEvents events);

  Status open() override;
  void send(nlohmann::json message, std::chrono::steady_clock::time_point deadline) override;
  void set_protocol_version(const std::string& version) override { version_ = version; }
  void close(std::function<void()> closed) override;

 private:
  void post(nlohmann::json message, std::chrono::steady_clock::time_point deadline);
  struct Transfer;
  http::OnBody body_reader(const std::shared_ptr<Transfer>& t);
  void done(const std::shared_ptr<Transfer>& t, const http::Response& r);
  // The GET stream of server-initiated messages (list_changed, logs), opened once the session
  // is initialized and again when it ends; a server answering 405 offers none.
  void open_stream();
  void stream_done(const std::shared_ptr<Transfer>& t, const http::Response& r);
  // DELETE of the session (its id is forgotten at once); `closed` (may be empty) runs after.
  void end_session(std::function<void()> closed);

  static constexpr std::chrono::minutes kStreamIdle{5};
  [[nodiscard]] std::vector<std::string> headers() const;

  net::asio::strand<net::Executor> strand_;
  http::CurlMulti& multi_;
  const McpServerConfig config_;  // a copy: pending handlers may outlive the client
  TransportEvents events_;
  std::string session_id_;
  std::string version_;
  bool initializing_ = false;  // an initialize POST is in flight
  std::deque<std::pair<nlohmann::json, std::chrono::steady_clock::time_point>>
      waiting_;  // sent meanwhile: they need its session id
  bool closed_ = false;
  bool stream_open_ = false;
  net::asio::steady_timer stream_timer_;
  std::chrono::milliseconds stream_backoff_{1'000};
  // Read by body callbacks on CurlMulti's strand: after close() they abort their transfers.
  std::shared_ptr<std::atomic<bool>> alive_ = std::make_shared<std::atomic<bool>>(true);
};

}  // namespace parley::bot::mcp
