// Money at the edges: integer nano-dollars (exact, what the ledger stores) shown as dollars.
#pragma once

#include <cstdint>
#include <string>

namespace parley::bot::money {

// "$0.0123" below a dollar (four decimals, the figures people compare), "$12.34" above.
std::string format_usd(int64_t nanousd);
// The exact decimal: 1234500 → "0.001234500".
std::string exact_usd(int64_t nanousd);
// "2026-12-05T11:28:38Z" for epoch ms.
std::string iso_utc(int64_t ms);
// USD as a number for JSON and charts (display only; sums are done in nano-dollars).
inline double to_usd(int64_t nanousd) { return static_cast<double>(nanousd) / 1e9; }

}  // namespace parley::bot::money
