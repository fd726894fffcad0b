#include "clients/mcp/http_transport.h"

#include <algorithm>
#include <utility>

#include <spdlog/spdlog.h>

#include "parley/bot/clients/llm/sse_parser.h"

namespace parley::bot::mcp {

namespace asio = net::asio;
using std::chrono::steady_clock;

namespace {

// The endpoint without its query string, for errors (a query may carry a key).
std::string endpoint_for_errors(const std::string& url) { return url.substr(0, url.find('?')); }

ErrorCode code_for_status(long status) {
  if (status == 401) return ErrorCode::unauthenticated;
  if (status == 403) return ErrorCode::permission_denied;
  if (status == 413) return ErrorCode::resource_exhausted;
  if (status >= 400 && status < 500) return ErrorCode::invalid_argument;
  return ErrorCode::unavailable;
}

}  // namespace

// One POST: its body is read on CurlMulti's strand (sniffed: JSON or an SSE stream), its end
// on the client's strand.
struct HttpTransport::Transfer {
  nlohmann::json id;  // null for a notification or a response we send
  bool is_initialize = false;
  bool had_session = false;
  bool stream = false;        // the GET stream of server-initiated messages
  bool opens_stream = false;  // notifications/initialized: once accepted, the stream opens
  // Body state, touched only on CurlMulti's strand until the completion is posted.
  enum class Mode { unknown, json, sse } mode = Mode::unknown;
  std::string json_body;
  llm::SseParser sse;
  size_t bytes = 0;
  std::atomic<bool> answered{false};  // a response with `id` came through the stream
  explicit Transfer(size_t max_event) : sse(max_event) {}
};

HttpTransport::HttpTransport(asio::strand<net::Executor> strand, http::CurlMulti& multi,
                             McpServerConfig config, TransportEvents events)
    : strand_(std::move(strand)),
      multi_(multi),
      config_(std::move(config)),
      events_(std::move(events)),
      stream_timer_(strand_) {}

Status HttpTransport::open() {
  if (config_.url.rfind("http://", 0) != 0 && config_.url.rfind("https://", 0) != 0) {
    return fail(ErrorCode::invalid_argument,
                "url '" + endpoint_for_errors(config_.url) + "' is not http:// or https://");
  }
  return {};
}

std::vector<std::string> HttpTransport::headers() const {
  std::vector<std::string> h{"Accept: application/json, text/event-stream",
                             "Content-Type: application/json"};
  if (!session_id_.empty()) h.push_back("Mcp-Session-Id: " + session_id_);
  if (!version_.empty()) h.push_back("MCP-Protocol-Version: " + version_);
  if (!config_.bearer_token.empty()) h.push_back("Authorization: Bearer " + config_.bearer_token);
  return h;
}

void HttpTransport::send(nlohmann::json message, steady_clock::time_point deadline) {
  if (closed_) return;
  if (initializing_) {
    waiting_.emplace_back(std::move(message), deadline);
    return;
  }
  post(std::move(message), deadline);
}

// The body callback of a POST or of the GET stream: runs on CurlMulti's strand, sniffs JSON or
// SSE, parses, and posts whole messages to the client's strand.
http::OnBody HttpTransport::body_reader(const std::shared_ptr<Transfer>& t) {
  auto strand = strand_;
  std::weak_ptr<HttpTransport> weak = weak_from_this();
  auto alive = alive_;
  size_t max_bytes = config_.max_message_bytes;
  std::string name = config_.name;
  auto deliver = [strand, weak, t](nlohmann::json m) {
    if (!t->id.is_null() && m.contains("id") && m["id"] == t->id && !m.contains("method")) {
      t->answered = true;
    }
    asio::post(strand, [weak, m = std::move(m)]() mutable {
      auto self = weak.lock();
      if (self && !self->closed_) self->events_.on_message(std::move(m));
    });
  };
  return [t, alive, max_bytes, name, deliver](long status, std::string_view piece) {
    if (!alive->load()) return false;
    t->bytes += piece.size();
    // A request's answer is capped as a whole; the long-lived stream by the event (SseParser).
    if (!t->stream && t->bytes > max_bytes) return false;
    if (status < 200 || status >= 300) {
      // An error body is kept (cut) for the error message.
      if (t->json_body.size() < 512) t->json_body.append(piece.substr(0, 512));
      return true;
    }
    if (t->mode == Transfer::Mode::unknown) {
      size_t first = piece.find_first_not_of(" \t\r\n");
      if (first == std::string_view::npos) {
        t->json_body.append(piece);
        return true;
      }
      t->mode =
          (piece[first] == '{' || piece[first] == '[') ? Transfer::Mode::json : Transfer::Mode::sse;
      if (t->mode == Transfer::Mode::sse) t->json_body.clear();
    }
    if (t->mode == Transfer::Mode::json) {
      t->json_body.append(piece);
      return true;
    }
    Status s = t->sse.feed(piece, [&](llm::SseEvent&& e) {
      if (e.type != "message") return;
      auto m = nlohmann::json::parse(e.data, nullptr, false);
      if (m.is_discarded() || !m.is_object()) {
        spdlog::warn("mcp server '{}': SSE event is not a JSON-RPC message, skipped: {:.120}", name,
                     e.data);
        return;
      }
      deliver(std::move(m));
    });
    return s.ok();
  };
}

void HttpTransport::post(nlohmann::json message, steady_clock::time_point deadline) {
  auto t = std::make_shared<Transfer>(config_.max_message_bytes);
  if (message.contains("method") && message.contains("id")) t->id = message["id"];
  t->is_initialize = message.value("method", "") == "initialize";
  t->opens_stream = message.value("method", "") == "notifications/initialized";
  t->had_session = !session_id_.empty();
  if (t->is_initialize) initializing_ = true;

  http::Request req;
  req.method = "POST";
  req.url = config_.url;
  req.headers = headers();
  req.body = message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  // The client's timer cancels the call at its deadline; the transfer is kept a little longer
  // so that a late answer is read (and dropped) rather than cut mid-stream.
  auto now = steady_clock::now();
  if (deadline == steady_clock::time_point::max() || deadline - now > std::chrono::hours(24)) {
    deadline = now + std::chrono::hours(24);
  }
  req.deadline = deadline + std::chrono::seconds(1);
  auto budget = std::chrono::duration_cast<std::chrono::milliseconds>(req.deadline - now);
  req.first_byte_timeout = std::max(budget, std::chrono::milliseconds(1'000));
  req.idle_timeout = req.first_byte_timeout;
  req.max_body_bytes = config_.max_message_bytes;

  std::weak_ptr<HttpTransport> weak = weak_from_this();
  multi_.start(std::move(req), body_reader(t), strand_, [weak, t](const http::Response& r) {
    if (auto self = weak.lock()) self->done(t, r);
  });
}

void HttpTransport::done(const std::shared_ptr<Transfer>& t, const http::Response& r) {
  if (t->is_initialize) {
    initializing_ = false;
    if (r.status >= 200 && r.status < 300) session_id_ = r.header("mcp-session-id");
    // Closed while initialize was in flight: the session just made is ended too.
    if (closed_ && !session_id_.empty()) end_session({});
  }
  if (closed_) return;
  std::string where = endpoint_for_errors(config_.url);
  auto failed = [&](Error e) {
    if (!t->id.is_null()) events_.on_send_failed(t->id, std::move(e));
  };
  if (r.failure != http::Failure::none) {
    if (r.failure == http::Failure::aborted && t->bytes > config_.max_message_bytes) {
      failed(Error{ErrorCode::resource_exhausted, "the answer from " + where + " is over " +
                                                      std::to_string(config_.max_message_bytes) +
                                                      " bytes"});
    } else if (!t->answered) {
      failed(Error{ErrorCode::unavailable, "POST " + where + " failed (" +
                                               std::string(http::to_string(r.failure)) +
                                               "): " + r.error});
    }
  } else if (r.status == 404 && t->had_session) {
    // The server forgot the session: start a new one (spec: re-initialize).
    session_id_.clear();
    failed(Error{ErrorCode::unavailable, "the MCP session at " + where + " expired (HTTP 404)"});
    events_.on_closed("its session expired (HTTP 404 from " + where + ")", true);
    return;
  } else if (r.status < 200 || r.status >= 300) {
    std::string body = t->json_body.substr(0, 200);
    failed(Error{code_for_status(r.status), "HTTP " + std::to_string(r.status) + " from " + where +
                                                (body.empty() ? "" : ": " + body)});
  } else if (t->mode == Transfer::Mode::json ||
             (t->mode == Transfer::Mode::unknown && !t->json_body.empty())) {
    auto m = nlohmann::json::parse(t->json_body, nullptr, false);
    if (m.is_object()) {
      events_.on_message(std::move(m));
    } else if (m.is_array()) {
      for (auto& one : m) {
        if (one.is_object()) events_.on_message(std::move(one));
      }
    } else {
      failed(Error{ErrorCode::internal, "the answer from " + where + " is not JSON"});
    }
  } else if (!t->id.is_null() && !t->answered) {
    failed(Error{ErrorCode::unavailable,
                 "the event stream from " + where + " ended without an answer"});
  }
  if (t->opens_stream && r.failure == http::Failure::none && r.status >= 200 && r.status < 300) {
    open_stream();
  }
  if (t->is_initialize) {
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& [m, deadline] : waiting) post(std::move(m), deadline);
  }
}

void HttpTransport::open_stream() {
  if (closed_ || session_id_.empty() || stream_open_) return;
  stream_open_ = true;
  auto t = std::make_shared<Transfer>(config_.max_message_bytes);
  t->stream = true;
  t->had_session = true;
  http::Request req;
  req.method = "GET";
  req.url = config_.url;
  req.headers = headers();
  req.headers.front() = "Accept: text/event-stream";
  req.first_byte_timeout = std::chrono::seconds(10);
  // A quiet stream is normal; after this long it is opened again.
  req.idle_timeout = kStreamIdle;
  std::weak_ptr<HttpTransport> weak = weak_from_this();
  multi_.start(std::move(req), body_reader(t), strand_, [weak, t](const http::Response& r) {
    if (auto self = weak.lock()) self->stream_done(t, r);
  });
}

void HttpTransport::stream_done(const std::shared_ptr<Transfer>& t, const http::Response& r) {
  stream_open_ = false;
  if (closed_) return;
  std::string where = endpoint_for_errors(config_.url);
  if (r.status == 405) {
    spdlog::debug("mcp server '{}': {} offers no event stream (HTTP 405)", config_.name, where);
    return;
  }
  if (r.status == 404) {
    session_id_.clear();
    events_.on_closed("its session expired (HTTP 404 from " + where + ")", true);
    return;
  }
  if (t->sse.events() > 0) stream_backoff_ = std::chrono::seconds(1);
  if (r.failure != http::Failure::none && r.failure != http::Failure::idle_timeout) {
    spdlog::info("mcp server '{}': event stream from {} ended ({}: {}); again in {} ms",
                 config_.name, where, http::to_string(r.failure), r.error, stream_backoff_.count());
  } else if (r.status >= 300) {
    spdlog::info("mcp server '{}': event stream from {} refused (HTTP {}); again in {} ms",
                 config_.name, where, r.status, stream_backoff_.count());
  }
  stream_timer_.expires_after(stream_backoff_);
  stream_backoff_ = std::min(stream_backoff_ * 2, std::chrono::milliseconds(30'000));
  stream_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    if (ec) return;
    if (auto self = weak.lock()) self->open_stream();
  });
}

void HttpTransport::close(std::function<void()> closed) {
  closed_ = true;
  alive_->store(false);
  waiting_.clear();
  stream_timer_.cancel();
  if (session_id_.empty()) {
    asio::post(strand_, std::move(closed));
    return;
  }
  end_session(std::move(closed));
}

void HttpTransport::end_session(std::function<void()> closed) {
  http::Request req;
  req.method = "DELETE";
  req.url = config_.url;
  req.headers = headers();
  req.connect_timeout = std::chrono::milliseconds(2'000);
  req.deadline = steady_clock::now() + std::chrono::seconds(3);
  session_id_.clear();
  std::string name = config_.name;
  auto self = shared_from_this();
  multi_.start(std::move(req), {}, strand_,
               [self, name, closed = std::move(closed)](const http::Response& r) {
                 // 405: the server does not let clients end sessions; nothing more to do.
                 if (r.failure != http::Failure::none || (r.status >= 300 && r.status != 405)) {
                   spdlog::warn("mcp server '{}': ending the session: {}", name,
                                r.failure != http::Failure::none
                                    ? std::string(http::to_string(r.failure)) + ": " + r.error
                                    : "HTTP " + std::to_string(r.status));
                 }
                 if (closed) closed();
               });
}

}  // namespace parley::bot::mcp
