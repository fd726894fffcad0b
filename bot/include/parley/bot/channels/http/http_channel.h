// HttpChannel: the HTTP channel — an HttpServer whose POST /v1/messages hands each message to
// the Inbox and answers with the turn's result as JSON (or a stream of its text, ?stream=1).
// It cannot push: every reply travels in the response to the request that asked for it.
//
// Answers: 200 with turn_json(); 403 (the access policy) and 429 with Retry-After (the rate
// limit), each with {"error", "stop"}; 500 when nothing could be stored. A reply is bracketed
// by Inbox::sending()/sent() before it is handed to the connection.
//
// Ownership and thread safety: as HttpServer's. The Inbox given to start() must outlive every
// request: after stop(), wait for in_flight() == 0.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "parley/bot/channels/channel.h"
#include "parley/bot/channels/http/http_server.h"
#include "parley/bot/channels/http/options.h"
#include "parley/bot/net.h"
#include "parley/bot/pipeline/message.h"
#include "parley/storage/outbox_repository.h"

namespace parley::bot::channels {

// The JSON answer for a turn's result (reply, stop, model, tokens, cost, steps, latencies, …),
// with "files": [{filename, media_type, bytes, url}] for the files sent with the reply.
nlohmann::json turn_json(const pipeline::TurnResult& r);

// "/files/<token>/<filename, percent-encoded>": where a file sent with an HTTP reply is served.
std::string file_url(const storage::OutboxFile& file);

// GET /files/<token>/<filename> (for HttpServerOptions::pages): a file sent with an HTTP reply,
// found by its token (unguessable, and behind the bearer token when there is one), as an
// attachment in a sandbox (never run as a page of this server). nullopt for any other path.
std::optional<Page> file_page(const PageRequest& request, storage::OutboxRepository& outbox);

class HttpChannel final : public Channel {
 public:
  // `server.host`/`server.port` say where to listen; `ready` is /readyz's check.
  HttpChannel(net::Executor executor, HttpServerOptions server, ReadyCheck ready);
  ~HttpChannel() override;
  HttpChannel(const HttpChannel&) = delete;
  HttpChannel& operator=(const HttpChannel&) = delete;

  [[nodiscard]] std::string_view name() const override { return "http"; }
  [[nodiscard]] bool can_push() const override { return false; }
  Status start(Inbox& inbox) override;
  void stop() override;
  void send(OutboundMessage message, std::function<void(Status)> done) override;
  [[nodiscard]] size_t in_flight() const override;
  [[nodiscard]] std::string banner() const override;

  // The port listened on (after start(); the chosen one when asked for port 0).
  [[nodiscard]] uint16_t port() const;

 private:
  net::Executor executor_;
  HttpServerOptions options_;
  ReadyCheck ready_;
  std::unique_ptr<HttpServer> server_;
};

// HOST:PORT (e.g. from --http or channels.http.listen) as host and port; invalid_argument
// naming `listen` otherwise.
Result<std::pair<std::string, uint16_t>> parse_listen(const std::string& listen);

}  // namespace parley::bot::channels
