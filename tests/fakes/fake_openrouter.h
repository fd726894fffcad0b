// FakeOpenRouter: a fake of OpenRouter's credit endpoints for tests of the credit monitor, on
// 127.0.0.1 (port 0). A Beast HTTP/1.1 server with keep-alive on its own io_context thread.
//
//   GET {base_url}/key (and the older alias /auth/key)
//     → {"data": {"label", "limit", "limit_reset", "limit_remaining", "include_byok_in_limit",
//                 "usage", "usage_daily", "usage_weekly", "usage_monthly", "is_free_tier",
//                 "is_management_key", "expires_at"}}
//   GET {base_url}/credits → {"data": {"total_credits", "total_usage"}}
//
// with base_url = "http://127.0.0.1:<port>/api/v1". Every request must carry
// "Authorization: Bearer <key>": no or another key answers 401 with OpenRouter's error shape
// {"error": {"code", "message"}}. /key accepts the API key and the management key. /credits,
// as the current docs say, needs the management key: the API key gets 403 (unless
// Options::credits_need_management_key is false). Figures are USD as JSON numbers; an empty
// optional is sent as null. Any other path answers 404, any other method 405 (JSON errors).
//
// Faults are scripted per endpoint (FIFO, one per request): an error status, a verbatim body
// (malformed JSON, a wrong shape), a delay before the headers. Every request is recorded.
//
// Thread safety: every public method may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::fakes {

struct FakeKeyInfo {
  std::string label = "sk-or-v1-0a1...f9e";  // OpenRouter puts a masked key here
  std::optional<double> limit;               // empty: null (no limit)
  std::optional<double> limit_remaining;     // empty: null
  std::optional<std::string> limit_reset;    // empty: null
  double usage = 0;
  double usage_daily = 0;
  double usage_weekly = 0;
  double usage_monthly = 0;
  bool is_free_tier = false;
};

struct FakeCredits {
  double total_credits = 0;
  double total_usage = 0;
};

// One scripted answer. status 200 with an empty body is the normal answer (after `delay`, with
// the authorization checked as usual); anything else replaces it whatever the key.
struct FakeAnswer {
  int status = 200;
  std::string body;  // non-empty: sent verbatim; empty with status != 200: an error JSON
  std::string message = "scripted error";  // the error JSON's message
  std::chrono::milliseconds delay{0};      // nothing is sent before this

  static FakeAnswer error(int status, std::string message = "scripted error");
  static FakeAnswer malformed();  // HTTP 200, body {"data": {"usage": 1.5, (cut short)
  static FakeAnswer raw(std::string body, int status = 200);
  static FakeAnswer delayed(std::chrono::milliseconds delay);
};

enum class OpenRouterEndpoint { key, credits };

struct OpenRouterRequest {
  std::string method;
  std::string target;         // e.g. "/api/v1/key"
  std::string authorization;  // the header's value, "" when absent
};

class FakeOpenRouter {
 public:
  struct Options {
    std::string api_key = "sk-or-v1-test-key";
    std::string management_key;  // empty: none exists (no key can read /credits)
    bool credits_need_management_key = true;
  };

  FakeOpenRouter();  // Options{}
  explicit FakeOpenRouter(Options options);
  // Stops accepting, closes every connection (delayed ones too), joins its thread.
  ~FakeOpenRouter();
  FakeOpenRouter(const FakeOpenRouter&) = delete;
  FakeOpenRouter& operator=(const FakeOpenRouter&) = delete;

  [[nodiscard]] uint16_t port() const;
  [[nodiscard]] std::string base_url() const;  // "http://127.0.0.1:<port>/api/v1"

  void set_key(FakeKeyInfo info);
  void set_credits(FakeCredits credits);
  void set_credits_need_management_key(bool need);
  // Answers the next request to `endpoint` (FIFO per endpoint).
  void push(OpenRouterEndpoint endpoint, FakeAnswer answer);

  [[nodiscard]] std::vector<OpenRouterRequest> requests() const;
  [[nodiscard]] size_t request_count(OpenRouterEndpoint endpoint) const;
  [[nodiscard]] size_t request_count() const;  // every path

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley::fakes
