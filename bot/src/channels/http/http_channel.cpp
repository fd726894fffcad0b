#include "parley/bot/net.h"  // first: Asio's coroutine support needs its macros

#include "parley/bot/channels/http/http_channel.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <string>
#include <utility>

namespace parley::bot::channels {

namespace asio = net::asio;

namespace {

// `text` with every byte but RFC 3986's unreserved characters as %XX: a file's name in its URL
// and in Content-Disposition's filename* (RFC 8187).
std::string percent_encoded(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    }
  }
  return out;
}

}  // namespace

std::string file_url(const storage::OutboxFile& file) {
  return fmt::format("/files/{}/{}", file.token, percent_encoded(file.filename));
}

nlohmann::json turn_json(const pipeline::TurnResult& r) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : r.files) {
    files.push_back({{"filename", f.filename},
                     {"media_type", f.media_type},
                     {"bytes", f.content.size()},
                     {"url", file_url(f)}});
  }
  return {
      {"files", std::move(files)},
      {"reply", r.reply},
      {"duplicate", r.duplicate},
      {"stop", to_string(r.stop)},
      {"command", r.command},
      {"primary", r.primary},
      {"model", r.model},
      {"conversation_id", r.conversation_id},
      {"message_id", r.message_id},
      {"tokens",
       {{"prompt", r.usage.prompt_tokens},
        {"completion", r.usage.completion_tokens},
        {"estimated", r.usage.estimated}}},
      {"cost_usd", r.usage.cost_usd ? nlohmann::json(*r.usage.cost_usd) : nlohmann::json(nullptr)},
      {"steps", r.steps},
      {"latency_ms", static_cast<double>(r.latency.count()) / 1000.0},
      {"llm_latency_ms", static_cast<double>(r.llm_latency.count()) / 1000.0}};
}

std::optional<Page> file_page(const PageRequest& request, storage::OutboxRepository& outbox) {
  constexpr std::string_view kPrefix = "/files/";
  std::string_view path(request.path);
  if (path.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  path.remove_prefix(kPrefix.size());
  const size_t slash = path.find('/');
  const std::string token(path.substr(0, slash));
  auto not_found = [] {
    Page p;
    p.status = 404;
    p.body = nlohmann::json{{"error", "no such file"}}.dump();
    return p;
  };
  if (token.size() != 32 || slash == std::string_view::npos) return not_found();
  auto found = outbox.file(token);
  if (!found) {
    if (found.error().code == ErrorCode::not_found) return not_found();
    Page p;
    p.status = 500;
    p.body = nlohmann::json{{"error", "the file could not be read"}}.dump();
    spdlog::error("http: reading a file failed: {}", found.error().describe());
    return p;
  }
  // Only what went out on this channel (the name after the token is for the client's sake).
  if (found->channel != "http") return not_found();
  Page p;
  p.content_type = found->file.media_type;
  p.body = std::move(found->file.content);
  p.headers = {{"Content-Disposition", fmt::format("attachment; filename*=UTF-8''{}",
                                                   percent_encoded(found->file.filename))},
               {"X-Content-Type-Options", "nosniff"},
               {"Content-Security-Policy", "sandbox; default-src 'none'"},
               {"Cache-Control", "private, max-age=86400"}};
  return p;
}

Result<std::pair<std::string, uint16_t>> parse_listen(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return fail(ErrorCode::invalid_argument, fmt::format("--http {}: expected HOST:PORT", listen));
  }
  int port = -1;
  try {
    port = std::stoi(listen.substr(colon + 1));
  } catch (const std::exception&) {
  }
  if (port < 0 || port > 65535) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("--http {}: the port must be 0-65535", listen));
  }
  return std::pair<std::string, uint16_t>{listen.substr(0, colon), static_cast<uint16_t>(port)};
}

namespace {

MessageResponse refusal(const pipeline::TurnResult& r) {
  MessageResponse refused;
  if (r.stop == pipeline::TurnStop::rate_limited) {
    refused.status = 429;
    refused.headers.emplace_back("Retry-After", std::to_string(r.retry_after.count()));
  } else {
    refused.status = 403;
  }
  // The sender was already told (once per window, or once ever): a short reason only.
  std::string why = r.reply;
  if (why.empty()) {
    why = r.stop == pipeline::TurnStop::rate_limited
              ? fmt::format("rate limited: send again in {} s", r.retry_after.count())
              : std::string("not allowed");
  }
  refused.body = {{"error", why}, {"stop", to_string(r.stop)}};
  return refused;
}

}  // namespace

HttpChannel::HttpChannel(net::Executor executor, HttpServerOptions server, ReadyCheck ready)
    : executor_(std::move(executor)), options_(std::move(server)), ready_(std::move(ready)) {}

HttpChannel::~HttpChannel() { stop(); }

Status HttpChannel::start(Inbox& inbox) {
  if (server_) return fail(ErrorCode::already_exists, "the HTTP channel is already started");
  server_ = std::make_unique<HttpServer>(
      executor_, options_,
      [&inbox](MessageRequest req) -> asio::awaitable<MessageResponse> {
        pipeline::InboundMessage in;
        in.channel = "http";
        in.platform_id = req.id;
        in.conversation = req.conversation;
        in.author = req.user;
        in.author_name = req.user;
        in.text = req.text;
        in.on_text = req.emit;
        const pipeline::TurnResult r = co_await inbox.deliver(in);
        if (r.refused) co_return refusal(r);
        if (r.error && r.outbox_id == 0) {
          // Nothing was kept. A database that is busy (another process's lock) or failing for
          // now (a full disk) is worth a retry: 503 with Retry-After, and the reason.
          const bool retry = r.error->code == ErrorCode::unavailable ||
                             r.error->code == ErrorCode::resource_exhausted;
          MessageResponse failed{
              retry ? 503 : 500,
              {{"error", fmt::format("the message was not kept ({}); {}", r.error->message,
                                     retry ? "send it again in a moment" : "nothing was stored")}},
              {}};
          if (retry) failed.headers.emplace_back("Retry-After", "5");
          co_return failed;
        }
        // The answer is handed to the connection now: from here on, after a crash it may have
        // been sent. A redelivery whose earlier answer is still owed (answered after a crash,
        // when no request was waiting) gets that answer, and it is sent from here.
        if (const int64_t id = r.outbox_id != 0 ? r.outbox_id : r.earlier_pending_outbox_id;
            id != 0) {
          co_await inbox.sending(id);
          inbox.sent(id);
        }
        co_return MessageResponse{200, turn_json(r), {}};
      },
      ready_);
  return server_->start();
}

void HttpChannel::stop() {
  if (server_) server_->stop();
}

void HttpChannel::send(OutboundMessage, std::function<void(Status)> done) {
  done(fail(ErrorCode::unavailable, "the HTTP channel cannot push: replies travel in responses"));
}

size_t HttpChannel::in_flight() const { return server_ ? server_->active_requests() : 0; }

uint16_t HttpChannel::port() const { return server_ ? server_->port() : options_.port; }

std::string HttpChannel::banner() const {
  return fmt::format("http://{}:{}/v1/messages", options_.host, port());
}

}  // namespace parley::bot::channels
