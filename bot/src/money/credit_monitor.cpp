#include "parley/bot/money/credit_monitor.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "parley/base/time_format.h"
#include "parley/base/usd.h"
#include "parley/storage/usage_repository.h"

namespace parley::bot::money {

using nlohmann::json;

// Named (not only anonymous): parley_bot is a unity build, and its other files have helpers of
// their own in this namespace.
namespace credit_detail {
namespace {

namespace asio = net::asio;
using nlohmann::json;
using storage::CreditSnapshot;

constexpr int64_t kMsPerHour = 3'600'000;
constexpr int64_t kRateWindowMs = 24 * kMsPerHour;  // the spend rate looks back this far
constexpr int64_t kMinRateSpanMs = 60'000;          // closer snapshots give no rate
constexpr size_t kDetailChars = 200;                // of a provider's error message
constexpr double kMaxUsd = 1e9;                     // a figure beyond this is not money
constexpr const char* kRedacted = "[redacted]";

// The path of a URL: "https://openrouter.ai/api/v1" → "/api/v1"; "" when it has none.
std::string url_path(const std::string& url) {
  const auto scheme = url.find("://");
  const auto from = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (from == std::string::npos) return {};
  return url.substr(from, url.find_first_of("?#", from) - from);
}

std::string trimmed(std::string s) {
  if (s.size() > kDetailChars) {
    s.resize(kDetailChars);
    s += "…";
  }
  return s;
}

ErrorCode code_for_status(long status) {
  switch (status) {
    case 401: return ErrorCode::unauthenticated;
    case 402: return ErrorCode::billing;
    case 403: return ErrorCode::permission_denied;
    case 404: return ErrorCode::not_found;
    case 408: return ErrorCode::deadline_exceeded;
    case 429: return ErrorCode::resource_exhausted;
    default: return status >= 500 ? ErrorCode::unavailable : ErrorCode::invalid_argument;
  }
}

ErrorCode code_for_failure(http::Failure f) {
  switch (f) {
    case http::Failure::connect_timeout:
    case http::Failure::first_byte_timeout:
    case http::Failure::idle_timeout:
    case http::Failure::deadline: return ErrorCode::deadline_exceeded;
    case http::Failure::cancelled: return ErrorCode::cancelled;
    case http::Failure::too_large: return ErrorCode::internal;
    default: return ErrorCode::unavailable;
  }
}

// What an answer that is not a 200 means, in words: "GET /api/v1/key: HTTP 500: <message>".
Error answer_error(const std::string& what, const http::Response& r) {
  if (r.failure != http::Failure::none) {
    return Error{code_for_failure(r.failure),
                 fmt::format("{}: no answer ({}: {})", what, http::to_string(r.failure), r.error)};
  }
  std::string detail;
  const json body = json::parse(r.body, nullptr, false);
  if (body.is_object()) {
    const auto e = body.find("error");
    if (e != body.end() && e->is_object()) {
      const auto m = e->find("message");
      if (m != e->end() && m->is_string()) detail = m->get<std::string>();
    }
  }
  if (detail.empty() && !body.is_object()) detail = r.body;
  std::string hint;
  if (r.status == 401) hint = " (the API key was refused)";
  if (r.status == 402) hint = " (out of credits)";
  return Error{code_for_status(r.status),
               fmt::format("{}: HTTP {}{}{}", what, r.status, hint,
                           detail.empty() ? std::string() : ": " + trimmed(detail))};
}

Result<json> data_of(const std::string& what, const http::Response& r) {
  if (r.failure != http::Failure::none || r.status != 200) return fail(answer_error(what, r));
  json body = json::parse(r.body, nullptr, false);
  if (body.is_discarded()) {
    return fail(ErrorCode::internal,
                fmt::format("{}: the answer is not valid JSON ({} bytes)", what, r.body.size()));
  }
  const auto data = body.is_object() ? body.find("data") : body.end();
  if (!body.is_object() || data == body.end() || !data->is_object()) {
    return fail(ErrorCode::internal, fmt::format("{}: the answer has no \"data\" object", what));
  }
  return body;
}

// data.<name> in nano-dollars: empty when absent or null (unless required).
Result<std::optional<int64_t>> money_at(const std::string& what, const json& data, const char* name,
                                        bool required) {
  const auto it = data.find(name);
  if (it == data.end() || it->is_null()) {
    if (required) {
      return fail(ErrorCode::internal, fmt::format("{}: data.{} is {}", what, name,
                                                   it == data.end() ? "missing" : "null"));
    }
    return std::optional<int64_t>();
  }
  if (!it->is_number()) {
    return fail(ErrorCode::internal, fmt::format("{}: data.{} is not a number", what, name));
  }
  const double usd = it->get<double>();
  if (!std::isfinite(usd) || std::fabs(usd) > kMaxUsd) {
    return fail(ErrorCode::internal, fmt::format("{}: data.{} is out of range", what, name));
  }
  return std::optional<int64_t>(storage::usd_to_nanousd(usd));
}

// /key's answer: the snapshot's /key figures, and the body with its label scrubbed.
struct KeyAnswer {
  CreditSnapshot figures;
  json body;
};

Result<KeyAnswer> parse_key(const std::string& what, const http::Response& r) {
  auto body = data_of(what, r);
  if (!body) return fail(std::move(body).error());
  const json& data = (*body)["data"];
  KeyAnswer a;
  auto usage = money_at(what, data, "usage", true);
  if (!usage) return fail(std::move(usage).error());
  a.figures.usage_nanousd = **usage;
  struct Optional {
    const char* name;
    std::optional<int64_t> CreditSnapshot::*field;
  };
  for (const Optional& o : {Optional{"limit", &CreditSnapshot::limit_nanousd},
                            Optional{"limit_remaining", &CreditSnapshot::remaining_nanousd},
                            Optional{"usage_daily", &CreditSnapshot::usage_daily_nanousd},
                            Optional{"usage_weekly", &CreditSnapshot::usage_weekly_nanousd},
                            Optional{"usage_monthly", &CreditSnapshot::usage_monthly_nanousd}}) {
    auto v = money_at(what, data, o.name, false);
    if (!v) return fail(std::move(v).error());
    a.figures.*o.field = *v;
  }
  // A key with a limit but no limit_remaining: what is left of the limit.
  if (a.figures.limit_nanousd && !a.figures.remaining_nanousd) {
    a.figures.remaining_nanousd = *a.figures.limit_nanousd - a.figures.usage_nanousd;
  }
  const auto free = data.find("is_free_tier");
  if (free != data.end() && !free->is_null()) {
    if (!free->is_boolean()) {
      return fail(ErrorCode::internal, fmt::format("{}: data.is_free_tier is not a boolean", what));
    }
    a.figures.is_free_tier = free->get<bool>();
  }
  a.body = std::move(*body);
  // OpenRouter puts a masked form of the key in the label: never stored.
  if (a.body["data"].contains("label")) a.body["data"]["label"] = kRedacted;
  return a;
}

struct CreditsAnswer {
  int64_t total_credits = 0;
  int64_t total_usage = 0;
  json body;
};

Result<CreditsAnswer> parse_credits(const std::string& what, const http::Response& r) {
  auto body = data_of(what, r);
  if (!body) return fail(std::move(body).error());
  const json& data = (*body)["data"];
  auto credits = money_at(what, data, "total_credits", true);
  if (!credits) return fail(std::move(credits).error());
  auto used = money_at(what, data, "total_usage", true);
  if (!used) return fail(std::move(used).error());
  return CreditsAnswer{**credits, **used, std::move(*body)};
}

struct Balance {
  int64_t nanousd = 0;
  bool from_account = false;  // total_credits − total_usage, not the key's limit
};

std::optional<Balance> balance_detail(const CreditSnapshot& s) {
  std::optional<int64_t> key;
  if (s.limit_nanousd) {
    key = s.remaining_nanousd ? *s.remaining_nanousd : *s.limit_nanousd - s.usage_nanousd;
  }
  std::optional<int64_t> account;
  if (s.total_credits_nanousd && s.total_usage_nanousd) {
    account = *s.total_credits_nanousd - *s.total_usage_nanousd;
  }
  if (key && account) return *account < *key ? Balance{*account, true} : Balance{*key, false};
  if (key) return Balance{*key, false};
  if (account) return Balance{*account, true};
  return std::nullopt;
}

// Spend per hour in nano-dollars (see the header), empty when nothing tells.
std::optional<double> spend_rate(const CreditSnapshot& now, const Balance& balance,
                                 const std::vector<CreditSnapshot>& recent) {
  const CreditSnapshot* oldest = nullptr;
  for (const auto& s : recent) {
    if (s.id != now.id && s.ts < now.ts) {
      oldest = &s;
      break;  // oldest first
    }
  }
  if (oldest != nullptr && now.ts - oldest->ts >= kMinRateSpanMs) {
    const bool account =
        balance.from_account && now.total_usage_nanousd && oldest->total_usage_nanousd;
    const int64_t spent = account ? *now.total_usage_nanousd - *oldest->total_usage_nanousd
                                  : now.usage_nanousd - oldest->usage_nanousd;
    if (spent >= 0) {
      return static_cast<double>(spent) * static_cast<double>(kMsPerHour) /
             static_cast<double>(now.ts - oldest->ts);
    }
  }
  if (now.usage_daily_nanousd) return static_cast<double>(*now.usage_daily_nanousd) / 24.0;
  return std::nullopt;
}

// Runs `f`, a call into code that is not the monitor's; nothing it throws leaves the monitor.
template <typename F>
void guarded(const char* what, F&& f) {
  try {
    std::forward<F>(f)();
  } catch (const std::exception& e) {
    spdlog::error("credit monitor: {} threw: {}", what, e.what());
  } catch (...) {
    spdlog::error("credit monitor: {} threw an unknown exception", what);
  }
}

}  // namespace
}  // namespace credit_detail

struct CreditMonitor::Impl : std::enable_shared_from_this<CreditMonitor::Impl> {
  Impl(const net::Executor& executor, http::CurlMulti& m, storage::CreditRepository& r,
       AlertSink& a, const Clock& c, CreditMonitorOptions o)
      : strand(net::asio::make_strand(executor)),
        timer(strand),
        multi(m),
        repository(r),
        sink(a),
        clock(c),
        options(std::move(o)) {
    while (!options.base_url.empty() && options.base_url.back() == '/') options.base_url.pop_back();
    key_url = options.base_url + "/key";
    credits_url = options.base_url + "/credits";
    const std::string path = credit_detail::url_path(options.base_url);
    key_what = fmt::format("GET {}/key", path);
    credits_what = fmt::format("GET {}/credits", path);
  }

  // --- On the strand ------------------------------------------------------------------------
  // A poll now; when one is in flight, `again` asks for one more after it (else it is folded
  // into the one in flight).
  void request_poll(bool again);
  void begin_poll();
  static net::asio::awaitable<void> run_poll(std::shared_ptr<Impl> self);
  void refuse_credits(long http_status);
  void store(credit_detail::KeyAnswer key, std::optional<credit_detail::CreditsAnswer> credits,
             std::string credits_error);
  void after_write(uint64_t gen, storage::CreditSnapshot snapshot, std::string credits_error,
                   Result<storage::WriteAck> ack);
  void raise_alerts(const storage::CreditSnapshot& s,
                    const std::optional<credit_detail::Balance>& b,
                    const std::optional<double>& rate, const std::optional<double>& runway);
  void fail_poll(uint64_t gen, Error error);
  void finish(const Result<CreditStatus>& outcome);
  void arm_timer();
  void log_problem(const std::string& message);

  // --- Any thread ---------------------------------------------------------------------------
  [[nodiscard]] http::Request request(const std::string& url, const std::string& secret) const;
  [[nodiscard]] std::string scrub(std::string text) const;
  CreditStatus snapshot_status() const {
    const std::lock_guard lock(status_mu);
    return status;
  }

  net::asio::strand<net::Executor> strand;
  net::asio::steady_timer timer;  // on the strand
  http::CurlMulti& multi;
  storage::CreditRepository& repository;
  AlertSink& sink;
  const Clock& clock;
  CreditMonitorOptions options;  // immutable after construction
  std::string key_url, credits_url, key_what, credits_what;

  std::atomic<bool> stopped{false};
  std::atomic<bool> started{false};
  std::atomic<uint64_t> calls{0};
  // Held while calling out (the sink, a poll_now `done`, submitting a row) and by stop(), so
  // that nothing is called once stop() has returned. Recursive: a callback may call stop().
  std::recursive_mutex gate;

  // Strand state.
  bool polling = false;
  uint64_t generation = 0;  // of the poll in flight
  bool poll_again = false;  // another poll when the one in flight ends
  bool credits_allowed = true;
  std::vector<PollDone> inflight;  // told when the poll in flight ends
  std::vector<PollDone> queued;    // want a poll that starts after that
  std::string last_logged;         // the last problem logged at warn (rate limit)

  mutable std::mutex status_mu;
  CreditStatus status;  // GUARDED_BY(status_mu)
};

void CreditMonitor::Impl::request_poll(bool again) {
  if (stopped) return;
  if (polling) {
    poll_again = poll_again || again;
    return;
  }
  begin_poll();
}

void CreditMonitor::Impl::begin_poll() {
  polling = true;
  poll_again = false;
  const uint64_t gen = ++generation;
  inflight = std::move(queued);
  queued.clear();
  std::shared_ptr<Impl> self = shared_from_this();
  net::asio::awaitable<void> work = run_poll(self);
  net::asio::co_spawn(strand, std::move(work), [self, gen](const std::exception_ptr& e) {
    if (!e) return;
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      what = ex.what();
    } catch (...) {
    }
    spdlog::error("credit monitor: a poll failed with an exception: {}", self->scrub(what));
    self->fail_poll(gen, Error{ErrorCode::internal, fmt::format("internal error: {}", what)});
  });
}

net::asio::awaitable<void> CreditMonitor::Impl::run_poll(std::shared_ptr<Impl> self) {
  Impl& m = *self;
  const uint64_t gen = m.generation;
  if (m.options.api_key.empty()) {
    m.fail_poll(gen, Error{ErrorCode::unauthenticated,
                           fmt::format("{}: no API key is configured", m.key_what)});
    co_return;
  }
  http::Request key_request = m.request(m.key_url, m.options.api_key);
  http::OnBody key_body;
  http::Response key_response =
      co_await http::async_fetch(m.multi, std::move(key_request), std::move(key_body));
  if (m.stopped) co_return;
  auto key = credit_detail::parse_key(m.key_what, key_response);
  if (!key) {
    m.fail_poll(gen, std::move(key).error());
    co_return;
  }

  std::optional<credit_detail::CreditsAnswer> credits;
  std::string credits_error;
  if (m.credits_allowed) {
    const std::string& secret =
        m.options.management_key.empty() ? m.options.api_key : m.options.management_key;
    http::Request credits_request = m.request(m.credits_url, secret);
    http::OnBody credits_body;
    http::Response credits_response =
        co_await http::async_fetch(m.multi, std::move(credits_request), std::move(credits_body));
    if (m.stopped) co_return;
    if (credits_response.failure == http::Failure::none &&
        (credits_response.status == 401 || credits_response.status == 403)) {
      m.refuse_credits(credits_response.status);
    } else {
      auto parsed = credit_detail::parse_credits(m.credits_what, credits_response);
      if (parsed) {
        credits = std::move(*parsed);
      } else {
        credits_error = m.scrub(std::move(parsed).error().message);
      }
    }
  }
  m.store(std::move(*key), std::move(credits), std::move(credits_error));
}

void CreditMonitor::Impl::refuse_credits(long http_status) {
  credits_allowed = false;
  {
    const std::lock_guard lock(status_mu);
    status.credits_endpoint_allowed = false;
  }
  if (options.management_key.empty()) {
    spdlog::info(
        "credit monitor: {} answered HTTP {}: it needs a management key; the {} balance comes "
        "from {} alone from now on",
        credits_what, http_status, options.provider, key_what);
  } else {
    spdlog::warn(
        "credit monitor: {} refused the configured management key (HTTP {}); the {} balance "
        "comes from {} alone from now on",
        credits_what, http_status, options.provider, key_what);
  }
}

void CreditMonitor::Impl::store(credit_detail::KeyAnswer key,
                                std::optional<credit_detail::CreditsAnswer> credits,
                                std::string credits_error) {
  storage::CreditSnapshot s = std::move(key.figures);
  s.ts = clock.now_ms();
  s.provider = options.provider;
  json raw = json::object();
  raw["key"] = std::move(key.body);
  if (credits) {
    s.total_credits_nanousd = credits->total_credits;
    s.total_usage_nanousd = credits->total_usage;
    raw["credits"] = std::move(credits->body);
  }
  s.raw = scrub(raw.dump(-1, ' ', false, json::error_handler_t::replace));

  const uint64_t gen = generation;
  auto pending = std::make_shared<storage::CreditSnapshot>(s);
  auto error = std::make_shared<std::string>(std::move(credits_error));
  std::weak_ptr<Impl> weak = weak_from_this();
  const std::lock_guard gate_lock(gate);
  if (stopped) return;
  repository.record(std::move(s), [weak, gen, pending, error](Result<storage::WriteAck> ack) {
    // On the write queue's completion thread (or this one, when refused at once).
    auto self = weak.lock();
    if (!self) return;
    const std::lock_guard lock(self->gate);
    if (self->stopped) return;
    net::asio::post(self->strand, [self, gen, pending, error, ack = std::move(ack)]() mutable {
      self->after_write(gen, std::move(*pending), std::move(*error), std::move(ack));
    });
  });
}

void CreditMonitor::Impl::after_write(uint64_t gen, storage::CreditSnapshot s,
                                      std::string credits_error, Result<storage::WriteAck> ack) {
  if (stopped || !polling || gen != generation) return;
  if (!ack) {
    fail_poll(gen, Error{ack.error().code, fmt::format("storing the {} credit snapshot failed: {}",
                                                       options.provider, ack.error().message)});
    return;
  }
  s.id = ack->row_id;
  const auto balance = credit_detail::balance_detail(s);
  std::optional<double> rate;
  std::optional<double> runway;
  if (balance) {
    auto recent = repository.since(options.provider, s.ts - credit_detail::kRateWindowMs);
    if (!recent) {
      spdlog::warn("credit monitor: reading earlier {} snapshots failed: {}", options.provider,
                   recent.error().describe());
    }
    rate = credit_detail::spend_rate(s, *balance,
                                     recent ? *recent : std::vector<storage::CreditSnapshot>{});
    if (rate && *rate > 0) {
      runway = std::max<double>(0.0, static_cast<double>(balance->nanousd)) / *rate;
    }
  }
  if (credits_error.empty()) {
    last_logged.clear();
  } else {
    log_problem(credits_error);
  }
  spdlog::debug("credit monitor: {} balance {}, runway {}", options.provider,
                balance ? format_usd(balance->nanousd) : std::string("unknown"),
                runway ? fmt::format("{:.1f} h", *runway) : std::string("unknown"));

  CreditStatus now;
  {
    const std::lock_guard lock(status_mu);
    status.latest = s;
    status.balance_nanousd = balance ? std::optional<int64_t>(balance->nanousd) : std::nullopt;
    status.runway_hours = runway;
    status.last_poll_ms = clock.now_ms();
    status.last_error = std::move(credits_error);  // its last use
    status.credits_endpoint_allowed = credits_allowed;
    ++status.polls;
    now = status;
  }
  raise_alerts(s, balance, rate, runway);
  finish(now);
}

void CreditMonitor::Impl::raise_alerts(const storage::CreditSnapshot& s,
                                       const std::optional<credit_detail::Balance>& balance,
                                       const std::optional<double>& rate,
                                       const std::optional<double>& runway) {
  std::vector<AlertRaise> alerts;
  const std::string day = utc_day(s.ts);
  if (balance) {
    const char* source = balance->from_account ? "account credits" : "the key's limit";
    auto low = [&](Severity severity, int64_t threshold, const char* name) {
      AlertRaise a;
      a.kind = "low_balance";
      a.severity = severity;
      a.subject = options.provider;
      a.period_key = day;
      a.message = fmt::format("{} credit balance is {} ({}), below the {} threshold of {}",
                              options.provider, format_usd(balance->nanousd), source, name,
                              format_usd(threshold));
      a.value = to_usd(balance->nanousd);
      a.threshold = to_usd(threshold);
      a.unit = "USD";
      alerts.push_back(std::move(a));
    };
    if (options.critical_nanousd && balance->nanousd < *options.critical_nanousd) {
      low(Severity::critical, *options.critical_nanousd, "critical");
    } else if (options.warning_nanousd && balance->nanousd < *options.warning_nanousd) {
      low(Severity::warning, *options.warning_nanousd, "warning");
    }
  }
  if (balance && rate && runway && options.runway_hours && *runway < *options.runway_hours) {
    AlertRaise a;
    a.kind = "runway";
    a.severity = Severity::warning;
    a.subject = options.provider;
    a.period_key = day;
    a.message = fmt::format(
        "{} credit ({}) lasts about {:.1f} hours at the recent spend of {}/hour, below the "
        "{:g}-hour threshold",
        options.provider, format_usd(balance->nanousd), *runway,
        format_usd(static_cast<int64_t>(std::llround(*rate))), *options.runway_hours);
    a.value = *runway;
    a.threshold = *options.runway_hours;
    a.unit = "hours";
    alerts.push_back(std::move(a));
  }
  if (alerts.empty()) return;
  const std::lock_guard lock(gate);
  if (stopped) return;
  for (auto& a : alerts) {
    credit_detail::guarded("the alert sink", [&] { sink.raise(std::move(a)); });
  }
}

void CreditMonitor::Impl::fail_poll(uint64_t gen, Error error) {
  if (!polling || gen != generation) return;
  error.message = scrub(std::move(error.message));
  log_problem(error.message);
  {
    const std::lock_guard lock(status_mu);
    status.last_poll_ms = clock.now_ms();
    status.last_error = error.message;
    status.credits_endpoint_allowed = credits_allowed;
    ++status.polls;
    ++status.failed_polls;
  }
  finish(fail(std::move(error)));
}

void CreditMonitor::Impl::log_problem(const std::string& message) {
  // The same problem poll after poll is logged once at warn, then at debug.
  if (message == last_logged) {
    spdlog::debug("credit monitor: {} (again)", message);
    return;
  }
  last_logged = message;
  spdlog::warn("credit monitor: {}", message);
}

void CreditMonitor::Impl::finish(const Result<CreditStatus>& outcome) {
  if (!polling) return;
  polling = false;
  std::vector<PollDone> waiters = std::move(inflight);
  inflight.clear();
  {
    const std::lock_guard lock(gate);
    if (stopped) return;
    for (auto& done : waiters) {
      if (done) credit_detail::guarded("a poll_now callback", [&] { done(outcome); });
    }
  }
  if (stopped) return;
  if (started && options.interval.count() > 0) arm_timer();
  if (!queued.empty() || poll_again) begin_poll();
}

void CreditMonitor::Impl::arm_timer() {
  timer.expires_after(options.interval);
  timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || self->stopped) return;
    self->request_poll(false);
  });
}

http::Request CreditMonitor::Impl::request(const std::string& url,
                                           const std::string& secret) const {
  http::Request r;
  r.method = "GET";
  r.url = url;
  r.headers = {"Authorization: Bearer " + secret, "Accept: application/json"};
  r.connect_timeout = std::min(std::chrono::milliseconds(10'000), options.request_timeout);
  r.first_byte_timeout = options.request_timeout;
  r.idle_timeout = options.request_timeout;
  r.deadline = http::Clock::now() + options.request_timeout;
  r.max_body_bytes = 1u << 20;
  return r;
}

std::string CreditMonitor::Impl::scrub(std::string text) const {
  for (const std::string* secret : {&options.api_key, &options.management_key}) {
    if (secret->empty()) continue;
    for (auto at = text.find(*secret); at != std::string::npos; at = text.find(*secret, at)) {
      text.replace(at, secret->size(), credit_detail::kRedacted);
      at += std::char_traits<char>::length(credit_detail::kRedacted);
    }
  }
  return text;
}

// --- CreditMonitor ------------------------------------------------------------------------------

CreditMonitor::CreditMonitor(const net::Executor& executor, http::CurlMulti& multi,
                             storage::CreditRepository& repository, AlertSink& alerts,
                             const Clock& clock, CreditMonitorOptions options)
    : impl_(
          std::make_shared<Impl>(executor, multi, repository, alerts, clock, std::move(options))) {}

CreditMonitor::~CreditMonitor() { stop(); }

void CreditMonitor::start() {
  if (impl_->stopped || impl_->started.exchange(true)) return;
  net::asio::post(impl_->strand, [self = impl_] { self->request_poll(false); });
}

void CreditMonitor::stop() {
  {
    const std::lock_guard lock(impl_->gate);
    if (impl_->stopped.exchange(true)) return;
  }
  net::asio::post(impl_->strand, [self = impl_] {
    self->timer.cancel();
    self->inflight.clear();
    self->queued.clear();
  });
}

void CreditMonitor::on_call() {
  const int every = impl_->options.every_calls;
  if (every <= 0 || !impl_->started || impl_->stopped) return;
  const uint64_t n = impl_->calls.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n % static_cast<uint64_t>(every) != 0) return;
  // The calls came after the poll in flight (if any) read the figures: they get a poll of
  // their own after it.
  net::asio::post(impl_->strand, [self = impl_] { self->request_poll(true); });
}

void CreditMonitor::poll_now(PollDone done) {
  if (impl_->stopped) return;
  net::asio::post(impl_->strand, [self = impl_, done = std::move(done)]() mutable {
    if (self->stopped) return;
    self->queued.push_back(std::move(done));
    if (!self->polling) self->begin_poll();
  });
}

CreditStatus CreditMonitor::status() const { return impl_->snapshot_status(); }

std::optional<int64_t> CreditMonitor::balance_of(const storage::CreditSnapshot& s) {
  auto b = credit_detail::balance_detail(s);
  if (!b) return std::nullopt;
  return b->nanousd;
}

}  // namespace parley::bot::money
