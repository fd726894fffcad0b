// A blocking HTTP client for tests, on libcurl's easy interface: one request, its status,
// body, headers (of the final response, names lower-cased, plus every header line as
// received), how long it took, how many body writes and new connections it needed, and the
// CURLcode (a timeout, a connection cut short, … are results, not exceptions). Proxies are
// never used.
//
// Ownership: each call owns its CURL handle and header list (RAII), unless it is given a
// CurlEasy to reuse: that keeps its connection between calls (keep-alive) and stays the
// caller's. The caller runs curl_global_init (e.g. in a test environment) when tests start
// threads; otherwise curl does it on first use.
// Thread safety: the functions may run on any threads at once, each with its own handle.
#pragma once

#include <curl/curl.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace parley::testing {

// Frees a curl object with `Free` (for std::unique_ptr).
template <auto Free>
struct CurlFree {
  template <typename T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};
using CurlEasy = std::unique_ptr<CURL, CurlFree<curl_easy_cleanup>>;
using CurlSlist = std::unique_ptr<curl_slist, CurlFree<curl_slist_free_all>>;

inline CurlEasy make_curl_easy() { return CurlEasy(curl_easy_init()); }

inline constexpr std::chrono::milliseconds kHttpTimeout{30'000};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::optional<std::string> body;   // sent as is (even when empty); none: no body at all
  std::vector<std::string> headers;  // "Name: value" lines; "Name:" drops a curl default
  std::chrono::milliseconds timeout = kHttpTimeout;  // the whole exchange
};

struct HttpResult {
  CURLcode code = CURLE_OK;
  long status = 0;  // 0: no response
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names, of the final response
  std::string raw_headers;  // every header line as received (status lines, 100 Continue too)
  size_t writes = 0;        // body callbacks: how many pieces the body came in
  long new_connections = 0;
  std::chrono::milliseconds elapsed{0};

  [[nodiscard]] bool ok() const { return code == CURLE_OK; }
  // The body as JSON; a discarded value when it is not JSON.
  [[nodiscard]] nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
  // A header of the final response by its lower-case name; "" when absent.
  [[nodiscard]] std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

namespace http_client_detail {

inline size_t on_body(char* data, size_t size, size_t n, void* user) noexcept {
  auto* r = static_cast<HttpResult*>(user);
  r->body.append(data, size * n);
  ++r->writes;
  return size * n;
}

inline size_t on_header(char* data, size_t size, size_t n, void* user) noexcept {
  auto* r = static_cast<HttpResult*>(user);
  std::string line(data, size * n);
  r->raw_headers += line;
  if (line.rfind("HTTP/", 0) == 0) r->headers.clear();  // a new response (after a 100 Continue)
  const size_t colon = line.find(':');
  if (colon == std::string::npos) return size * n;
  std::string name = line.substr(0, colon);
  for (char& c : name) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  std::string value = line.substr(colon + 1);
  value.erase(0, value.find_first_not_of(" \t"));
  value.erase(value.find_last_not_of("\r\n \t") + 1);
  r->headers[name] = value;
  return size * n;
}

}  // namespace http_client_detail

// One request. `connection`: a handle kept between calls (its options are reset, its
// connection reused); null: a handle of its own for this call.
inline HttpResult http_perform(const HttpRequest& request, CURL* connection = nullptr) {
  HttpResult r;
  CurlEasy own;
  CURL* h = connection;
  if (h == nullptr) {
    own = make_curl_easy();
    h = own.get();
  } else {
    curl_easy_reset(h);
  }
  if (h == nullptr) {
    r.code = CURLE_FAILED_INIT;
    return r;
  }
  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  if (request.body) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body->data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body->size()));
  }
  CurlSlist headers;
  for (const auto& line : request.headers) {
    curl_slist* more = curl_slist_append(headers.get(), line.c_str());
    if (more != nullptr) {
      (void)headers.release();  // now owned through `more`, its new head
      headers.reset(more);
    }
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_client_detail::on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, http_client_detail::on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &r);
  const auto start = std::chrono::steady_clock::now();
  r.code = curl_easy_perform(h);
  r.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
  curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r.new_connections);
  // The handle may outlive this call: it must not point at the header list or the result.
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(nullptr));
  return r;
}

inline HttpResult http_get(const std::string& url, std::vector<std::string> headers = {},
                           std::chrono::milliseconds timeout = kHttpTimeout) {
  HttpRequest request;
  request.url = url;
  request.headers = std::move(headers);
  request.timeout = timeout;
  return http_perform(request);
}

// A POST of `body`, by default as JSON.
inline HttpResult http_post(const std::string& url, std::string body,
                            std::vector<std::string> headers = {"Content-Type: application/json"},
                            std::chrono::milliseconds timeout = kHttpTimeout) {
  HttpRequest request;
  request.method = "POST";
  request.url = url;
  request.body = std::move(body);
  request.headers = std::move(headers);
  request.timeout = timeout;
  return http_perform(request);
}

}  // namespace parley::testing
