// Running one capability call from a coroutine, with a timeout. Shared by the tool loop and the
// command router.
#pragma once

#include <chrono>

#include "parley/bot/net.h"
#include "parley/capabilities/capability.h"

namespace parley::bot::pipeline::detail {

// Runs `capability` and returns its result, or deadline_exceeded at `until` (the capability's
// late answer is then dropped). REQUIRES: the calling coroutine runs on a strand (or on one
// thread): the capability's completion is posted to it and meets the timer's wait in order.
net::asio::awaitable<Result<nlohmann::json>> invoke_with_timeout(
    capabilities::Capability& capability, capabilities::InvokeContext ctx, nlohmann::json args,
    std::chrono::steady_clock::time_point until);

}  // namespace parley::bot::pipeline::detail
