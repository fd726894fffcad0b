#include "pipeline/invoke_with_timeout.h"

#include <fmt/format.h>

#include <memory>
#include <optional>

namespace parley::bot::pipeline::detail {

namespace asio = net::asio;
namespace caps = parley::capabilities;
using nlohmann::json;

asio::awaitable<Result<json>> invoke_with_timeout(caps::Capability& capability,
                                                  caps::InvokeContext ctx, json args,
                                                  std::chrono::steady_clock::time_point until) {
  auto ex = co_await asio::this_coro::executor;
  struct State {
    explicit State(const net::Executor& e) : timer(e) {}
    asio::steady_timer timer;
    std::optional<Result<json>> result;
    bool finished = false;
  };
  auto st = std::make_shared<State>(ex);
  st->timer.expires_at(until);
  capability.invoke(ctx, args, [st, ex](Result<json> r) {
    asio::post(ex, [st, r = std::move(r)]() mutable {
      if (st->finished) return;  // too late: the turn went on without it
      st->result = std::move(r);
      st->timer.cancel();
    });
  });
  boost::system::error_code ec;
  co_await st->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  st->finished = true;
  if (st->result) co_return std::move(*st->result);
  co_return fail(ErrorCode::deadline_exceeded,
                 fmt::format("{} did not answer in time", capability.name()));
}

}  // namespace parley::bot::pipeline::detail
