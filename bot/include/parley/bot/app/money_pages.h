// The money pages of the HTTP server (HttpServerOptions::pages): the same numbers as the CLI.
//   GET /api/usage[?since=7d|from=D&to=D][&by=day|model|user|conversation|capability|none][&tz=Z]
//   GET /api/credits              balance, limit, runway, last poll, budgets, open alerts
//   GET /api/alerts[?all=1]       open (or all) alerts, newest first
//   GET /api/reports[?since=30d]  the numbers of the /reports page
//   GET /reports[?since=30d]      the HTML page: spend per day by model, tokens per day, top
//                                 users, budget gauges, open alerts (inline SVG, no scripts)
//   GET /metrics                  Prometheus text format
// Bad query parameters are 400 with {"error"} naming the parameter.
#pragma once

#include <optional>

#include "parley/base/clock.h"
#include "parley/bot/channels/http/http_server.h"
#include "parley/bot/money/treasury.h"
#include "parley/storage/store.h"

namespace parley::bot::app {

std::optional<channels::Page> money_page(const channels::PageRequest& request,
                                         money::Treasury& money, storage::Store& store,
                                         const parley::Clock& clock = SystemClock::instance());

}  // namespace parley::bot::app
