#include "fakes/fake_openrouter.h"

// clang-format off
#include "parley/bot/net.h"  // first: Asio's coroutine support needs its macros
// clang-format on

#include <fmt/format.h>

#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>

#include "fakes/http_fake_server.h"

namespace parley::fakes {

namespace {

using asio::awaitable;
using nlohmann::json;
using std::chrono::milliseconds;

constexpr std::string_view kPrefix = "/api/v1";

json number_or_null(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

// OpenRouter's error body.
std::string error_body(int status, const std::string& message) {
  json e = json::object();
  e["code"] = status;
  e["message"] = message;
  return json{{"error", e}}.dump();
}

// What one request is answered with.
struct Reply {
  int status = 200;
  std::string body;
  milliseconds delay{0};
};

}  // namespace

FakeAnswer FakeAnswer::error(int status, std::string message) {
  FakeAnswer a;
  a.status = status;
  a.message = std::move(message);
  return a;
}

FakeAnswer FakeAnswer::malformed() { return raw(R"({"data": {"usage": 1.5, )"); }

FakeAnswer FakeAnswer::raw(std::string body, int status) {
  FakeAnswer a;
  a.status = status;
  a.body = std::move(body);
  return a;
}

FakeAnswer FakeAnswer::delayed(milliseconds delay) {
  FakeAnswer a;
  a.delay = delay;
  return a;
}

struct FakeOpenRouter::Impl {
  explicit Impl(Options o);

  // Records the request and decides its answer.
  Reply answer(const FakeRequest& req);
  // Sends it after its delay; whether the connection may serve another request.
  awaitable<bool> respond(const FakeRequest& req, FakeConnection& conn);

  mutable std::mutex mu;
  Options options;                                                // GUARDED_BY(mu)
  FakeKeyInfo key;                                                // GUARDED_BY(mu)
  FakeCredits credits;                                            // GUARDED_BY(mu)
  std::map<OpenRouterEndpoint, std::deque<FakeAnswer>> scripted;  // GUARDED_BY(mu)
  std::map<OpenRouterEndpoint, size_t> counts;                    // GUARDED_BY(mu)
  std::vector<OpenRouterRequest> recorded;                        // GUARDED_BY(mu)

  // Last: destroyed (stopped) first, while the state its handler reads still exists.
  HttpFakeServer server;
};

FakeOpenRouter::Impl::Impl(Options o)
    : options(std::move(o)),
      server(HttpFakeServer::Options{.name = "fake_openrouter"},
             [this](const FakeRequest& req, FakeConnection& conn) { return respond(req, conn); }) {}

awaitable<bool> FakeOpenRouter::Impl::respond(const FakeRequest& req, FakeConnection& conn) {
  Reply reply = answer(req);
  const bool waited = co_await conn.wait(reply.delay);
  if (!waited) co_return false;
  FakeResponse res = make_fake_response(static_cast<unsigned>(reply.status), "application/json",
                                        std::move(reply.body), req.keep_alive());
  const bool more = co_await conn.send(res);
  co_return more;
}

Reply FakeOpenRouter::Impl::answer(const FakeRequest& req) {
  const std::string target(req.target());
  const std::string path = target.substr(0, target.find('?'));
  const auto auth_it = req.find(http::field::authorization);
  const std::string authorization =
      auth_it == req.end() ? std::string() : std::string(auth_it->value());

  const std::lock_guard lock(mu);
  recorded.push_back(OpenRouterRequest{std::string(req.method_string()), target, authorization});

  std::optional<OpenRouterEndpoint> endpoint;
  if (path == fmt::format("{}/key", kPrefix) || path == fmt::format("{}/auth/key", kPrefix)) {
    endpoint = OpenRouterEndpoint::key;
  } else if (path == fmt::format("{}/credits", kPrefix)) {
    endpoint = OpenRouterEndpoint::credits;
  }
  if (!endpoint) return Reply{404, error_body(404, fmt::format("Not Found: {}", path))};
  ++counts[*endpoint];

  milliseconds delay{0};
  auto& queue = scripted[*endpoint];
  if (!queue.empty()) {
    FakeAnswer a = std::move(queue.front());
    queue.pop_front();
    delay = a.delay;
    if (a.status != 200 || !a.body.empty()) {
      std::string body = a.body.empty() ? error_body(a.status, a.message) : std::move(a.body);
      return Reply{a.status, std::move(body), delay};
    }
  }
  if (req.method() != http::verb::get) {
    return Reply{405, error_body(405, "Method Not Allowed"), delay};
  }

  constexpr std::string_view kBearer = "Bearer ";
  const std::string presented =
      authorization.rfind(kBearer, 0) == 0 ? authorization.substr(kBearer.size()) : std::string();
  const bool is_api = !presented.empty() && presented == options.api_key;
  const bool is_management =
      !presented.empty() && !options.management_key.empty() && presented == options.management_key;
  if (!is_api && !is_management) {
    return Reply{
        401, error_body(401, presented.empty() ? "No auth credentials found" : "User not found."),
        delay};
  }

  json data = json::object();
  if (*endpoint == OpenRouterEndpoint::key) {
    data["label"] = key.label;
    data["limit"] = number_or_null(key.limit);
    data["limit_reset"] = key.limit_reset ? json(*key.limit_reset) : json(nullptr);
    data["limit_remaining"] = number_or_null(key.limit_remaining);
    data["include_byok_in_limit"] = false;
    data["usage"] = key.usage;
    data["usage_daily"] = key.usage_daily;
    data["usage_weekly"] = key.usage_weekly;
    data["usage_monthly"] = key.usage_monthly;
    data["byok_usage"] = 0;
    data["byok_usage_daily"] = 0;
    data["byok_usage_weekly"] = 0;
    data["byok_usage_monthly"] = 0;
    data["is_free_tier"] = key.is_free_tier;
    data["is_management_key"] = is_management;
    data["expires_at"] = nullptr;
    data["rate_limit"] = {{"requests", -1}, {"interval", "10s"}};
  } else {
    if (options.credits_need_management_key && !is_management) {
      return Reply{403, error_body(403, "Only management keys can perform this operation"), delay};
    }
    data["total_credits"] = credits.total_credits;
    data["total_usage"] = credits.total_usage;
  }
  return Reply{200, json{{"data", std::move(data)}}.dump(), delay};
}

FakeOpenRouter::FakeOpenRouter() : FakeOpenRouter(Options{}) {}
FakeOpenRouter::FakeOpenRouter(Options options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
FakeOpenRouter::~FakeOpenRouter() = default;

uint16_t FakeOpenRouter::port() const { return impl_->server.port(); }

std::string FakeOpenRouter::base_url() const {
  return fmt::format("http://127.0.0.1:{}{}", impl_->server.port(), kPrefix);
}

void FakeOpenRouter::set_key(FakeKeyInfo info) {
  const std::lock_guard lock(impl_->mu);
  impl_->key = std::move(info);
}

void FakeOpenRouter::set_credits(FakeCredits credits) {
  const std::lock_guard lock(impl_->mu);
  impl_->credits = credits;
}

void FakeOpenRouter::set_credits_need_management_key(bool need) {
  const std::lock_guard lock(impl_->mu);
  impl_->options.credits_need_management_key = need;
}

void FakeOpenRouter::push(OpenRouterEndpoint endpoint, FakeAnswer answer) {
  const std::lock_guard lock(impl_->mu);
  impl_->scripted[endpoint].push_back(std::move(answer));
}

std::vector<OpenRouterRequest> FakeOpenRouter::requests() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->recorded;
}

size_t FakeOpenRouter::request_count(OpenRouterEndpoint endpoint) const {
  const std::lock_guard lock(impl_->mu);
  auto it = impl_->counts.find(endpoint);
  return it == impl_->counts.end() ? 0 : it->second;
}

size_t FakeOpenRouter::request_count() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->recorded.size();
}

}  // namespace parley::fakes
