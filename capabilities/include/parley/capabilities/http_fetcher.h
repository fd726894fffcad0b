// HttpFetcher: how a capability GETs a web page without knowing curl or Asio. bot/ implements
// it (bot/http/web_fetcher.h, over the process's one curl multi handle) and hands it to
// capabilities through Services::http; tests hand in a fake.
//
// The contract every implementation keeps: only http and https, for the first URL and every
// redirect hop; redirects followed by the fetcher itself (at most `max_redirects`), each hop
// checked again; unless `allow_private`, a connection to a loopback, private, link-local
// (cloud metadata included), unspecified, shared (CGNAT), multicast or broadcast address is
// refused with permission_denied — checked on the address actually connected to, never on the
// name; at most `max_bytes` of body kept (more: the first `max_bytes` with truncated = true);
// everything, redirects included, within `timeout` (deadline_exceeded).
//
// A non-2xx final status is a FetchResponse, not an error: the caller decides what it means.
// Errors name the URL that failed.
//
// Thread safety: fetch() may be called from any thread, concurrently. `done` is called exactly
// once, possibly on another thread and possibly before fetch() returns.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

#include "parley/base/result.h"

namespace parley::capabilities {

struct FetchRequest {
  std::string url;  // http:// or https://
  size_t max_bytes = 1u << 20;
  std::chrono::milliseconds timeout{10'000};  // the whole fetch, every redirect included
  int max_redirects = 5;
  bool allow_private = false;  // true: private and loopback addresses may be fetched too
};

struct FetchResponse {
  long status = 0;           // the final response's HTTP status
  std::string final_url;     // after redirects
  std::string content_type;  // the Content-Type header as sent (may carry "; charset=…")
  std::string body;          // decoded (gzip, br, …), at most max_bytes
  bool truncated = false;    // the body was longer than max_bytes and was cut
};

class HttpFetcher {
 public:
  virtual ~HttpFetcher() = default;
  virtual void fetch(FetchRequest request,
                     std::function<void(Result<FetchResponse>)> done) const = 0;
};

}  // namespace parley::capabilities
