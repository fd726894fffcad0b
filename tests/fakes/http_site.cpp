#include "fakes/http_site.h"

// clang-format off
#include "parley/bot/net.h"  // first: Asio's coroutine support needs its macros
// clang-format on

#include <fmt/format.h>

#include <map>
#include <mutex>

#include "fakes/http_fake_server.h"

namespace parley::fakes {

SitePage SitePage::html(std::string body) {
  SitePage p;
  p.body = std::move(body);
  return p;
}

SitePage SitePage::text(std::string body, std::string content_type) {
  SitePage p;
  p.body = std::move(body);
  p.content_type = std::move(content_type);
  return p;
}

SitePage SitePage::bytes(std::string body, std::string content_type) {
  return text(std::move(body), std::move(content_type));
}

SitePage SitePage::redirect(std::string location, int status) {
  SitePage p;
  p.status = status;
  p.content_type = "text/plain";
  p.body = "moved";
  p.headers.emplace_back("Location", std::move(location));
  return p;
}

struct HttpSite::Impl {
  Impl();

  // Records the request and finds its page (a 404 page when there is none).
  SitePage page_for(const std::string& target);
  // Sends the page, in pieces when it says so; whether the connection may serve another
  // request.
  asio::awaitable<bool> respond(const FakeRequest& req, FakeConnection& conn);

  mutable std::mutex mu;
  std::map<std::string, SitePage> pages;  // GUARDED_BY(mu)
  std::vector<std::string> requested;     // GUARDED_BY(mu)

  // Last: destroyed (stopped) first, while the state its handler reads still exists.
  HttpFakeServer server;
};

HttpSite::Impl::Impl()
    : server(HttpFakeServer::Options{.name = "http_site"},
             [this](const FakeRequest& req, FakeConnection& conn) { return respond(req, conn); }) {}

// The head is written by hand (no Date, the headers in the page's order) and the body in
// `write_bytes` pieces with a pause between them: a slow site as clients see one.
asio::awaitable<bool> HttpSite::Impl::respond(const FakeRequest& req, FakeConnection& conn) {
  const SitePage page = page_for(std::string(req.target()));
  const bool keep_alive = req.keep_alive();
  bool ok = co_await conn.wait(page.delay_before_headers);
  if (!ok) co_return false;
  const auto status = static_cast<unsigned>(page.status);
  const auto reason = http::obsolete_reason(http::int_to_status(status));
  std::string head =
      fmt::format("HTTP/1.1 {} {}\r\n", status, std::string_view(reason.data(), reason.size()));
  if (!page.content_type.empty()) head += fmt::format("Content-Type: {}\r\n", page.content_type);
  for (const auto& [name, value] : page.headers) head += fmt::format("{}: {}\r\n", name, value);
  head += fmt::format("Content-Length: {}\r\n", page.body.size());
  if (!keep_alive) head += "Connection: close\r\n";
  head += "\r\n";
  if (page.write_bytes == 0) {
    head += page.body;
    ok = co_await conn.write_raw(std::move(head));
    co_return ok&& keep_alive;
  }
  ok = co_await conn.write_raw(std::move(head));
  if (!ok) co_return false;
  for (size_t at = 0; at < page.body.size(); at += page.write_bytes) {
    if (at > 0) {
      ok = co_await conn.wait(page.interval);
      if (!ok) co_return false;
    }
    std::string piece = page.body.substr(at, page.write_bytes);
    ok = co_await conn.write_raw(std::move(piece));
    if (!ok) co_return false;
  }
  co_return keep_alive;
}

SitePage HttpSite::Impl::page_for(const std::string& target) {
  const std::string path = target.substr(0, target.find('?'));
  const std::lock_guard lock(mu);
  requested.push_back(target);
  if (auto it = pages.find(path); it != pages.end()) return it->second;
  SitePage missing = SitePage::text(fmt::format("no page at {}", path));
  missing.status = 404;
  return missing;
}

HttpSite::HttpSite() : impl_(std::make_unique<Impl>()) {}
HttpSite::~HttpSite() = default;

uint16_t HttpSite::port() const { return impl_->server.port(); }

std::string HttpSite::url(std::string_view path) const {
  return fmt::format("http://127.0.0.1:{}{}", impl_->server.port(), path);
}

void HttpSite::set(std::string path, SitePage page) {
  const std::lock_guard lock(impl_->mu);
  impl_->pages[std::move(path)] = std::move(page);
}

std::vector<std::string> HttpSite::requested() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->requested;
}

size_t HttpSite::request_count() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->requested.size();
}

}  // namespace parley::fakes
