// AlertCenter: the AlertSink of the process. A raised alert is stored in `credit_alerts` once
// per (kind, subject, severity, period_key) — later raises in the same period are dropped here, in
// memory, before they cost a write — and a new one is delivered to the admin targets: the log
// (always), the admin conversations (a callback the process wires to its outbox), and an
// optional webhook that receives the alert as a JSON body (POST).
//
// The webhook URL is a secret (chat webhooks carry their token in the URL): it is read from the
// environment variable named in the configuration and never logged — failures name its host.
//
// Thread safety: raise() may be called from any thread and never blocks on I/O; the webhook
// POST runs on the executor given at construction.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "parley/base/clock.h"
#include "parley/bot/clients/http/curl_multi.h"
#include "parley/bot/money/alert_sink.h"
#include "parley/bot/money/periods.h"
#include "parley/bot/net.h"
#include "parley/storage/alert_repository.h"

namespace parley::bot::money {

struct AlertOptions {
  std::string zone = "UTC";  // the day an alert without a period counts in
  std::string webhook_url;   // the secret URL itself (resolved from the environment)
  std::chrono::milliseconds webhook_timeout{10'000};
};

nlohmann::json alert_json(const storage::AlertRecord& a);
// "#12 critical budget_hard (2026-12-05): global daily LLM budget reached …"
std::string alert_line(const storage::AlertRecord& a);

class AlertCenter final : public AlertSink {
 public:
  using Deliver = std::function<void(const storage::AlertRecord&)>;

  // `multi` may be null when no webhook is configured.
  AlertCenter(storage::AlertRepository& repository, const parley::Clock& clock,
              AlertOptions options, http::CurlMulti* multi, net::Executor executor);
  // Waits for the store's answers to raises still in flight (they call back into this object).
  ~AlertCenter() override;
  AlertCenter(const AlertCenter&) = delete;
  AlertCenter& operator=(const AlertCenter&) = delete;

  // Also tell these (admin conversations); set before the first raise.
  void on_new(Deliver deliver) { deliver_ = std::move(deliver); }

  void raise(AlertRaise alert) override;

  [[nodiscard]] uint64_t raised() const { return raised_.load(); }
  // Blocks until every raise so far is stored (or failed) and delivered to the log and the
  // admin callback. Not to be called from the store's writer thread.
  void wait_idle();
  [[nodiscard]] uint64_t webhook_failures() const { return webhook_failures_->load(); }

 private:
  void deliver(const storage::AlertRecord& record);
  // Touches nothing of the AlertCenter, which may be gone before the post completes: the
  // failure counter is shared with it.
  static net::asio::awaitable<void> post_webhook(http::CurlMulti* multi, http::Request req,
                                                 int64_t id, std::string host,
                                                 std::shared_ptr<std::atomic<uint64_t>> failures);

  storage::AlertRepository& repository_;
  const parley::Clock& clock_;
  AlertOptions options_;
  Periods periods_;
  http::CurlMulti* multi_;
  net::Executor executor_;
  Deliver deliver_;
  std::mutex mu_;
  std::unordered_set<std::string> seen_;  // kind␟subject␟period already stored (or storing)
  std::condition_variable idle_;
  size_t in_flight_ = 0;  // raises submitted whose answer has not yet been handled (under mu_)
  std::atomic<uint64_t> raised_{0};
  std::shared_ptr<std::atomic<uint64_t>> webhook_failures_ =
      std::make_shared<std::atomic<uint64_t>>(0);
};

}  // namespace parley::bot::money
