#include "parley/bot/money/alerts.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace parley::bot::money {

namespace asio = net::asio;

std::string_view to_string(Severity s) noexcept {
  switch (s) {
    case Severity::info: return "info";
    case Severity::warning: return "warning";
    case Severity::critical: return "critical";
  }
  return "warning";
}

namespace {

// scheme://host[:port] of a URL, for messages about a secret one.
std::string url_host(const std::string& url) {
  const auto scheme = url.find("://");
  const size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  size_t end = url.find_first_of("/?#", start);
  std::string authority =
      url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (const auto at = authority.rfind('@'); at != std::string::npos) {
    authority = authority.substr(at + 1);
  }
  return (scheme == std::string::npos ? "" : url.substr(0, scheme + 3)) + authority;
}

constexpr size_t kSeenLimit = 100'000;

}  // namespace

nlohmann::json alert_json(const storage::AlertRecord& a) {
  auto opt = [](const std::optional<double>& v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  };
  auto opt_ms = [](const std::optional<int64_t>& v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  };
  return {{"id", a.id},
          {"ts", a.ts},
          {"kind", a.kind},
          {"severity", a.severity},
          {"subject", a.subject},
          {"period", a.period_key},
          {"message", a.message},
          {"value", opt(a.value)},
          {"threshold", opt(a.threshold)},
          {"unit", a.unit},
          {"delivered_at", opt_ms(a.delivered_at)},
          {"acked_at", opt_ms(a.acked_at)},
          {"acked_by", a.acked_by.empty() ? nlohmann::json(nullptr) : nlohmann::json(a.acked_by)}};
}

std::string alert_line(const storage::AlertRecord& a) {
  return fmt::format("#{} {} {} ({}): {}{}", a.id, a.severity, a.kind, a.period_key, a.message,
                     a.acked_at ? fmt::format(" [acknowledged by {}]", a.acked_by) : "");
}

AlertCenter::AlertCenter(storage::AlertRepository& repository, const parley::Clock& clock,
                         AlertOptions options, http::CurlMulti* multi, net::Executor executor)
    : repository_(repository),
      clock_(clock),
      options_(std::move(options)),
      periods_(options_.zone),
      multi_(multi),
      executor_(std::move(executor)) {}

AlertCenter::~AlertCenter() { wait_idle(); }

void AlertCenter::wait_idle() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [this] { return in_flight_ == 0; });
}

void AlertCenter::raise(AlertRaise alert) {
  if (alert.period_key.empty()) alert.period_key = periods_.day_key(clock_.now_ms());
  std::string key = fmt::format("{}\x1f{}\x1f{}\x1f{}", alert.kind, alert.subject,
                                to_string(alert.severity), alert.period_key);
  {
    std::lock_guard lock(mu_);
    if (seen_.size() >= kSeenLimit) seen_.clear();  // the table dedupes too; this only saves writes
    if (!seen_.insert(key).second) return;
    ++in_flight_;
  }
  storage::AlertRecord record;
  record.ts = clock_.now_ms();
  record.kind = alert.kind;
  record.severity = std::string(to_string(alert.severity));
  record.subject = alert.subject;
  record.period_key = alert.period_key;
  record.message = alert.message;
  record.value = alert.value;
  record.threshold = alert.threshold;
  record.unit = alert.unit;
  repository_.raise(record, [this, record, key](Result<storage::WriteAck> r) mutable {
    bool stored = r.ok();
    if (!stored) {
      spdlog::error("alert {} could not be stored: {} ({})", record.kind, r.error().describe(),
                    record.message);
    } else if (r->inserted) {  // not inserted: stored earlier in this period (before a restart)
      record.id = r->row_id;
      raised_.fetch_add(1, std::memory_order_relaxed);
      deliver(record);
    }
    std::lock_guard lock(mu_);
    if (!stored) seen_.erase(key);  // raised again, it is tried again
    if (--in_flight_ == 0) idle_.notify_all();
  });
}

void AlertCenter::deliver(const storage::AlertRecord& record) {
  const std::string line = alert_line(record);
  if (record.severity == "critical") {
    spdlog::critical("alert {}", line);
  } else if (record.severity == "warning") {
    spdlog::warn("alert {}", line);
  } else {
    spdlog::info("alert {}", line);
  }
  if (deliver_) {
    try {
      deliver_(record);
    } catch (const std::exception& e) {
      spdlog::error("alert #{}: delivery to the admin conversations failed: {}", record.id,
                    e.what());
    }
  }
  repository_.mark_delivered(record.id);
  if (options_.webhook_url.empty() || multi_ == nullptr) return;
  http::Request req;
  req.method = "POST";
  req.url = options_.webhook_url;
  req.headers = {"Content-Type: application/json"};
  req.body =
      nlohmann::json{{"source", "parley"}, {"alert", alert_json(record)}, {"text", line}}.dump();
  req.connect_timeout = options_.webhook_timeout;
  req.first_byte_timeout = options_.webhook_timeout;
  req.deadline = http::Clock::now() + options_.webhook_timeout;
  std::string host = url_host(options_.webhook_url);
  auto failures = webhook_failures_;
  asio::co_spawn(
      executor_,
      post_webhook(multi_, std::move(req), record.id, std::move(host), std::move(failures)),
      asio::detached);
}

asio::awaitable<void> AlertCenter::post_webhook(http::CurlMulti* multi, http::Request req,
                                                int64_t id, std::string host,
                                                std::shared_ptr<std::atomic<uint64_t>> failures) {
  http::Response resp = co_await http::async_fetch(*multi, std::move(req));
  if (resp.failure != http::Failure::none || resp.status < 200 || resp.status >= 300) {
    failures->fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("alert #{}: the webhook at {} did not take it: {}", id, host,
                 resp.failure != http::Failure::none ? std::string(http::to_string(resp.failure))
                                                     : fmt::format("HTTP {}", resp.status));
  }
}

}  // namespace parley::bot::money
