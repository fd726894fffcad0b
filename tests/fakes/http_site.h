// HttpSite: a small web site for tests of web fetching, on 127.0.0.1 (port 0 by default). A
// Beast HTTP/1.1 server with keep-alive on its own io_context thread.
//
// Pages are configured per path (the query string is ignored when matching): HTML, plain text,
// binary bodies, big bodies, slow bodies (written in pieces with a pause between them), late
// headers, redirects (relative or absolute Location, any scheme, loops). Any other path gets a
// 404 text/plain page. Every request's target is recorded.
//
// Delays are asio timers: one slow page never holds up another connection.
// Thread safety: every public method may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace parley::fakes {

struct SitePage {
  int status = 200;
  std::string content_type = "text/html; charset=utf-8";  // empty: no Content-Type header
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra ones, e.g. Location
  std::chrono::milliseconds delay_before_headers{0};         // nothing is sent before this
  size_t write_bytes = 0;                 // 0: the body in one write; N: in writes of N bytes…
  std::chrono::milliseconds interval{0};  // …with this pause before each but the first

  static SitePage html(std::string body);
  static SitePage text(std::string body, std::string content_type = "text/plain; charset=utf-8");
  static SitePage bytes(std::string body, std::string content_type);
  static SitePage redirect(std::string location, int status = 302);
};

class HttpSite {
 public:
  HttpSite();
  // Stops accepting, closes every connection (slow ones too), joins its thread.
  ~HttpSite();
  HttpSite(const HttpSite&) = delete;
  HttpSite& operator=(const HttpSite&) = delete;

  [[nodiscard]] uint16_t port() const;
  // "http://127.0.0.1:<port><path>".
  [[nodiscard]] std::string url(std::string_view path = "/") const;

  // Serves `page` at `path` ("/a/b", without query), replacing what was there.
  void set(std::string path, SitePage page);

  [[nodiscard]] std::vector<std::string> requested() const;  // request targets, in order
  [[nodiscard]] size_t request_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley::fakes
