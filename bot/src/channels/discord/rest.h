// Rest: parley's calls to Discord's HTTP API, through the process's curl multi (no thread per
// call), within Discord's rate limits so that no request is sent that Discord would refuse:
// - one queue per bucket: the `X-RateLimit-Bucket` hash learned per route (method + path with
//   ids as {id}) plus the major id (channel, guild, webhook), one request in flight per bucket,
//   FIFO behind it, waiting out `Remaining: 0` until `Reset-After` (read as a float);
// - a global 50/s window in front (interaction callbacks and webhooks are outside it), counted
//   over 1.15 s: a request timed to the millisecond at the window's edge reaches Discord inside
//   it (a 429, counted as invalid);
// - 429: wait `retry_after` (the body's float) and try again; `global: true` pauses every
//   bucket; `X-RateLimit-Scope: shared` is not counted against the bot;
// - invalid requests (401, 403, 429 not shared) are counted over 10 minutes, and sending stops
//   far below Discord's 10,000 (Cloudflare's ban); a 401 disables the token until restart.
// 5xx answers and transport failures are retried a few times with back-off.
//
// The token goes into the Authorization header only: never into a log line, an error or stats.
// Thread safety: call() and stats() from any thread; the state lives on the Rest's strand.
#pragma once

// clang-format off
#include "parley/bot/net.h"
// clang-format on

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "parley/bot/clients/http/curl_multi.h"
#include "parley/storage/outbox_file.h"

namespace parley::bot::channels::discord {

struct RestReply {
  long status = 0;      // 0: no answer (transport failure, or refused before sending)
  nlohmann::json body;  // the answer's JSON (null when none or not JSON)
  std::string error;    // what went wrong, in words; empty on success
  [[nodiscard]] bool ok() const { return status >= 200 && status < 300; }
};

// A multipart/form-data body as Discord takes a message with files: `payload` (the message's
// JSON, given "attachments": [{id, filename}]) as payload_json, then each file as files[N],
// between `boundary` lines (a boundary found in no part).
struct MultipartBody {
  std::string boundary;
  std::string body;
};
MultipartBody discord_multipart(nlohmann::json payload,
                                const std::vector<storage::OutboxFile>& files);

struct RestStats {
  uint64_t requests = 0;      // requests sent
  uint64_t rate_limited = 0;  // 429 answers
  uint64_t waits = 0;         // times a request waited for its bucket or the global window
  uint64_t invalid_10min = 0;
  bool token_disabled = false;
  std::map<std::string, uint64_t> limited_by_route;  // 429s by route ("POST /channels/{id}/…")
  size_t buckets = 0;                                // rate-limit buckets known now
};

class Rest {
 public:
  struct Options {
    std::string api_base;  // e.g. https://discord.com/api (paths are /v10/… under it)
    std::string token;     // the bot token (never logged)
    int global_per_second = 50;
    int invalid_limit = 1000;  // per 10 minutes; Discord bans at 10,000
    int max_retries = 3;       // 5xx and transport failures
    std::chrono::milliseconds timeout{15'000};
    // Buckets (route × major id) kept: past it, idle ones with requests left (or whose limit
    // has reset) are forgotten — a bot in many channels does not grow without end.
    size_t max_buckets = 4096;
  };
  // `on_alert` gets one operator-facing line for a disabled token or a tripped breaker.
  Rest(const net::Executor& executor, http::CurlMulti& multi, Options options,
       std::function<void(const std::string&)> on_alert);
  ~Rest();
  Rest(const Rest&) = delete;
  Rest& operator=(const Rest&) = delete;

  // One request to `path` (e.g. "/channels/123/messages"; "/v10" is added); `body` null: none.
  // `dropped`: when set and true by the time the request's turn to be sent comes, it is not
  // sent (a typing indicator queued behind a busy limit, for a turn that has ended).
  // `files`: uploaded with the message (multipart/form-data: `body` as payload_json, with its
  // "attachments" naming each, then files[0], files[1], …).
  net::asio::awaitable<RestReply> call(std::string method, std::string path,
                                       nlohmann::json body = nullptr,
                                       std::shared_ptr<const std::atomic<bool>> dropped = nullptr,
                                       std::vector<storage::OutboxFile> files = {});
  [[nodiscard]] RestStats stats() const;

  // The route key of a path ("POST /channels/{id}/messages") and its major id ("123").
  static std::pair<std::string, std::string> route_of(const std::string& method,
                                                      const std::string& path);

 private:
  struct Bucket;
  net::asio::awaitable<RestReply> run(std::string method, std::string path, nlohmann::json body,
                                      std::shared_ptr<const std::atomic<bool>> dropped,
                                      std::vector<storage::OutboxFile> files);
  net::asio::awaitable<void> acquire(Bucket& b);
  void release(Bucket& b);
  net::asio::awaitable<void> sleep_until(std::chrono::steady_clock::time_point t);
  Bucket& bucket_for(const std::string& route, const std::string& major);
  void count_invalid(std::chrono::steady_clock::time_point now);

  net::asio::strand<net::Executor> strand_;
  http::CurlMulti& multi_;
  Options options_;
  std::function<void(const std::string&)> on_alert_;
  std::map<std::string, std::string> hash_by_route_;
  std::map<std::string, std::unique_ptr<Bucket>> buckets_;
  size_t prune_at_ = 0;  // the size that makes bucket_for() forget idle buckets
  std::deque<std::chrono::steady_clock::time_point> recent_;   // global window
  std::deque<std::chrono::steady_clock::time_point> invalid_;  // last 10 minutes
  std::chrono::steady_clock::time_point global_pause_until_{};
  bool invalid_alerted_ = false;
  bool token_disabled_ = false;
  // Figures for stats(), read from any thread.
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> rate_limited_{0};
  std::atomic<uint64_t> waits_{0};
  std::atomic<uint64_t> invalid_count_{0};
  std::atomic<bool> disabled_flag_{false};
  std::atomic<size_t> bucket_count_{0};
  // Replaced (on the strand) at each 429, read whole by stats().
  std::atomic<std::shared_ptr<const std::map<std::string, uint64_t>>> limited_by_route_{
      std::make_shared<const std::map<std::string, uint64_t>>()};
};

}  // namespace parley::bot::channels::discord
