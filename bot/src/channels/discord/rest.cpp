#include "channels/discord/rest.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <vector>

#include "channels/discord/events.h"

namespace parley::bot::channels::discord {

namespace asio = net::asio;
using SteadyClock = std::chrono::steady_clock;

struct Rest::Bucket {
  std::string key;
  int64_t remaining = -1;  // -1: not known yet
  SteadyClock::time_point reset_at{};
  bool busy = false;
  std::deque<std::shared_ptr<asio::steady_timer>> waiters;
};

namespace {

// The global limit's window: Discord's second, plus a margin for the time between this clock
// and Discord's (curl's queue, the network, Discord's front): without it a few requests in a
// hundred reached Discord inside the previous second and were refused with a 429.
constexpr auto kGlobalWindow = std::chrono::milliseconds(1150);

bool digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::vector<std::string> segments(const std::string& path) {
  std::vector<std::string> out;
  const std::string p = path.substr(0, path.find('?'));
  size_t at = 0;
  while (at < p.size()) {
    if (p[at] == '/') {
      ++at;
      continue;
    }
    const size_t end = std::min(p.find('/', at), p.size());
    out.push_back(p.substr(at, end - at));
    at = end;
  }
  return out;
}

// Seconds as Discord writes them ("1.250"); 0 when absent or not a number.
double seconds_of(const std::string& text) {
  try {
    return text.empty() ? 0.0 : std::stod(text);
  } catch (const std::exception&) {
    return 0.0;
  }
}

SteadyClock::duration from_seconds(double s) {
  return std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(s));
}

// Interaction callbacks and webhook (follow-up) routes are outside the global limit.
bool outside_global(const std::string& route) {
  return route.find("/interactions/") != std::string::npos ||
         route.find("/webhooks/") != std::string::npos;
}

}  // namespace

std::pair<std::string, std::string> Rest::route_of(const std::string& method,
                                                   const std::string& path) {
  const auto segs = segments(path);
  std::string route = method + " ";
  std::string major;
  for (size_t i = 0; i < segs.size(); ++i) {
    std::string seg = segs[i];
    const bool major_slot = i == 1 && (segs[0] == "channels" || segs[0] == "guilds" ||
                                       segs[0] == "webhooks" || segs[0] == "interactions");
    if (major_slot && digits(seg)) {
      major = seg;
      seg = "{major}";
    } else if (i == 2 && (segs[0] == "webhooks" || segs[0] == "interactions")) {
      major += "/" + std::to_string(std::hash<std::string>{}(seg) % 100000);  // never the token
      seg = "{token}";
    } else if (digits(seg)) {
      seg = "{id}";
    }
    route += "/" + seg;
  }
  return {route, major};
}

Rest::Rest(const net::Executor& executor, http::CurlMulti& multi, Options options,
           std::function<void(const std::string&)> on_alert)
    : strand_(asio::make_strand(executor)),
      multi_(multi),
      options_(std::move(options)),
      on_alert_(std::move(on_alert)) {}

Rest::~Rest() = default;

RestStats Rest::stats() const {
  RestStats s;
  s.requests = requests_.load();
  s.rate_limited = rate_limited_.load();
  s.waits = waits_.load();
  s.invalid_10min = invalid_count_.load();
  s.token_disabled = disabled_flag_.load();
  s.limited_by_route = *limited_by_route_.load();
  s.buckets = bucket_count_.load(std::memory_order_relaxed);
  return s;
}

MultipartBody discord_multipart(nlohmann::json payload,
                                const std::vector<storage::OutboxFile>& files) {
  nlohmann::json attachments = nlohmann::json::array();
  for (size_t i = 0; i < files.size(); ++i) {
    attachments.push_back({{"id", i}, {"filename", files[i].filename}});
  }
  payload["attachments"] = std::move(attachments);
  const std::string json = payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  MultipartBody out;
  for (;;) {
    out.boundary = "parley-" + storage::new_file_token();
    const auto inside = [&out](std::string_view part) {
      return part.find(out.boundary) != std::string_view::npos;
    };
    if (!inside(json) && std::none_of(files.begin(), files.end(), [&](const auto& f) {
          return inside(f.content) || inside(f.filename);
        })) {
      break;
    }
  }
  std::string& b = out.body;
  b = fmt::format(
      "--{}\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n"
      "Content-Type: application/json\r\n\r\n{}\r\n",
      out.boundary, json);
  for (size_t i = 0; i < files.size(); ++i) {
    // The name is a plain file name (no quotes, backslashes or control characters: see
    // pipeline::safe_filename), so it goes into the quoted string as it is.
    b += fmt::format(
        "--{}\r\nContent-Disposition: form-data; name=\"files[{}]\"; filename=\"{}\"\r\n"
        "Content-Type: {}\r\n\r\n",
        out.boundary, i, files[i].filename, files[i].media_type);
    b += files[i].content;
    b += "\r\n";
  }
  b += fmt::format("--{}--\r\n", out.boundary);
  return out;
}

asio::awaitable<RestReply> Rest::call(std::string method, std::string path, nlohmann::json body,
                                      std::shared_ptr<const std::atomic<bool>> dropped,
                                      std::vector<storage::OutboxFile> files) {
  auto reply = co_await asio::co_spawn(strand_,
                                       run(std::move(method), std::move(path), std::move(body),
                                           std::move(dropped), std::move(files)),
                                       asio::use_awaitable);
  co_return reply;
}

Rest::Bucket& Rest::bucket_for(const std::string& route, const std::string& major) {
  const auto hash = hash_by_route_.find(route);
  const std::string key = (hash == hash_by_route_.end() ? route : hash->second) + ":" + major;
  if (buckets_.size() >= std::max(prune_at_, options_.max_buckets) && buckets_.count(key) == 0) {
    // Forgotten: a bucket no request holds or waits for, which has requests left or whose
    // limit has reset (a request to it later learns its limits again from the answer). One in
    // use, or exhausted until a reset to come, is kept.
    const auto now = SteadyClock::now();
    std::erase_if(buckets_, [&](const auto& kv) {
      const Bucket& b = *kv.second;
      return !b.busy && b.waiters.empty() && (b.remaining != 0 || b.reset_at <= now);
    });
    // Mostly busy ones left: the next scan waits until the map has doubled.
    prune_at_ = 2 * buckets_.size();
  }
  auto& slot = buckets_[key];
  if (!slot) {
    slot = std::make_unique<Bucket>();
    slot->key = key;
  }
  bucket_count_.store(buckets_.size(), std::memory_order_relaxed);
  return *slot;
}

asio::awaitable<void> Rest::acquire(Bucket& b) {
  if (!b.busy) {
    b.busy = true;
    co_return;
  }
  auto timer = std::make_shared<asio::steady_timer>(strand_, SteadyClock::time_point::max());
  b.waiters.push_back(timer);
  boost::system::error_code ec;
  co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  // Woken by release(): the bucket was handed over (busy stays true).
}

void Rest::release(Bucket& b) {
  if (b.waiters.empty()) {
    b.busy = false;
    return;
  }
  auto next = b.waiters.front();
  b.waiters.pop_front();
  next->cancel();
}

asio::awaitable<void> Rest::sleep_until(SteadyClock::time_point t) {
  if (t <= SteadyClock::now()) co_return;
  waits_.fetch_add(1, std::memory_order_relaxed);
  asio::steady_timer timer(strand_, t);
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

void Rest::count_invalid(SteadyClock::time_point now) {
  invalid_.push_back(now);
  while (!invalid_.empty() && invalid_.front() < now - std::chrono::minutes(10)) {
    invalid_.pop_front();
  }
  invalid_count_.store(invalid_.size());
}

asio::awaitable<RestReply> Rest::run(std::string method, std::string path, nlohmann::json body,
                                     std::shared_ptr<const std::atomic<bool>> dropped,
                                     std::vector<storage::OutboxFile> files) {
  const auto [route, major] = route_of(method, path);
  std::optional<MultipartBody> multipart;
  if (!files.empty()) multipart = discord_multipart(std::move(body), files);
  Bucket& bucket = bucket_for(route, major);
  co_await acquire(bucket);
  RestReply out;
  int failures = 0;
  int limited = 0;
  for (;;) {
    if (token_disabled_) {
      out = RestReply{0, nullptr,
                      "the Discord token was refused (401): parley sends nothing "
                      "more with it until it is replaced and parley restarted"};
      break;
    }
    auto now = SteadyClock::now();
    while (!invalid_.empty() && invalid_.front() < now - std::chrono::minutes(10)) {
      invalid_.pop_front();
    }
    invalid_count_.store(invalid_.size());
    if (static_cast<int>(invalid_.size()) >= options_.invalid_limit) {
      if (!invalid_alerted_) {
        invalid_alerted_ = true;
        on_alert_(
            fmt::format("discord: {} invalid requests (401/403/429) in 10 minutes: REST "
                        "sending paused until the count falls (Discord bans at 10,000)",
                        invalid_.size()));
      }
      out = RestReply{0, nullptr, "too many invalid requests in 10 minutes: sending paused"};
      break;
    }
    invalid_alerted_ = false;
    // This bucket's window, then the global pause and the global 50/s.
    if (bucket.remaining == 0) {
      co_await sleep_until(bucket.reset_at);
    }
    co_await sleep_until(global_pause_until_);
    if (!outside_global(route)) {
      now = SteadyClock::now();
      while (!recent_.empty() && recent_.front() <= now - kGlobalWindow) {
        recent_.pop_front();
      }
      if (static_cast<int>(recent_.size()) >= options_.global_per_second) {
        co_await sleep_until(recent_.front() + kGlobalWindow);
        continue;  // look at every limit again
      }
      recent_.push_back(SteadyClock::now());
    }

    if (dropped && dropped->load()) {
      if (!outside_global(route) && !recent_.empty()) recent_.pop_back();  // not sent after all
      out = RestReply{0, nullptr, "no longer wanted"};
      break;
    }
    http::Request req;
    req.method = method;
    req.url = options_.api_base + "/v10" + path;
    req.headers = {"Authorization: Bot " + options_.token,
                   "User-Agent: DiscordBot (https://github.com/parley-bot/parley, 0.1)"};
    if (multipart) {
      req.headers.emplace_back("Content-Type: multipart/form-data; boundary=" +
                               multipart->boundary);
      req.body = multipart->body;
    } else if (!body.is_null()) {
      req.headers.emplace_back("Content-Type: application/json");
      req.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
    req.deadline = SteadyClock::now() + options_.timeout;
    req.first_byte_timeout = options_.timeout;
    requests_.fetch_add(1, std::memory_order_relaxed);
    http::Response res = co_await http::async_fetch(multi_, std::move(req));
    now = SteadyClock::now();

    // What the answer says about the bucket.
    if (const std::string hash = res.header("x-ratelimit-bucket"); !hash.empty()) {
      hash_by_route_[route] = hash;
    }
    if (const std::string rem = res.header("x-ratelimit-remaining"); !rem.empty()) {
      bucket.remaining = static_cast<int64_t>(seconds_of(rem));
      bucket.reset_at = now + from_seconds(seconds_of(res.header("x-ratelimit-reset-after")));
    }
    out = RestReply{};
    out.status = res.failure == http::Failure::none ? res.status : 0;
    if (!res.body.empty()) {
      out.body = nlohmann::json::parse(res.body, nullptr, false);
      if (out.body.is_discarded()) out.body = nullptr;
    }
    if (res.failure != http::Failure::none || res.status >= 500) {
      out.error = res.failure != http::Failure::none
                      ? fmt::format("{} {}: {}", method, route, res.error)
                      : fmt::format("{} {}: HTTP {}", method, route, res.status);
      if (++failures > options_.max_retries) break;
      spdlog::warn("discord: {} (attempt {}; trying again)", out.error, failures);
      co_await sleep_until(SteadyClock::now() + std::chrono::milliseconds(500) * (1 << failures));
      continue;
    }
    if (res.status == 429) {
      rate_limited_.fetch_add(1, std::memory_order_relaxed);
      auto by_route = std::make_shared<std::map<std::string, uint64_t>>(*limited_by_route_.load());
      ++(*by_route)[route];
      limited_by_route_.store(std::move(by_route));
      double retry = 1.0;
      bool global = false;
      // Read without throwing: a field of another type keeps the default.
      retry = json_number(out.body, "retry_after", retry);
      global = json_bool(out.body, "global", false);
      if (res.header("x-ratelimit-global") == "true") global = true;
      const bool shared = res.header("x-ratelimit-scope") == "shared";
      if (!shared) count_invalid(now);
      spdlog::warn("discord: 429 on {} (bucket {}{}); waiting {:.3f} s", route, bucket.key,
                   global ? ", global" : (shared ? ", shared" : ""), retry);
      if (++limited > 5) {
        out.error = fmt::format("{} {}: still rate limited after 5 waits", method, route);
        break;
      }
      const auto until = now + from_seconds(retry);
      if (global) {
        global_pause_until_ = std::max(global_pause_until_, until);
      } else {
        bucket.remaining = 0;
        bucket.reset_at = std::max(bucket.reset_at, until);
      }
      continue;
    }
    if (res.status == 401) {
      count_invalid(now);
      token_disabled_ = true;
      disabled_flag_.store(true);
      on_alert_(
          "discord: the bot token was refused (401 Unauthorized): Discord is off until the "
          "token is replaced (DISCORD_TOKEN) and parley restarted");
      out.error = fmt::format("{} {}: 401 Unauthorized (the token was refused)", method, route);
      break;
    }
    if (res.status == 403) count_invalid(now);
    if (!out.ok()) {
      std::string message = json_string(out.body, "message");
      out.error = fmt::format("{} {}: HTTP {}{}{}", method, route, res.status,
                              message.empty() ? "" : ": ", message);
    }
    break;
  }
  release(bucket);
  co_return out;
}

}  // namespace parley::bot::channels::discord
