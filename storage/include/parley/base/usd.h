// Money at the edges: integer nano-dollars (exact, what the ledger stores) shown as dollars.
#pragma once

#include <cstdint>
#include <string>

namespace parley {

// "$0.0123" below a dollar (four decimals, the figures people compare), "$12.34" above.
std::string format_usd(int64_t nanousd);
// "$0.001235" for decimals = 6: rounded half away from zero to `decimals` (0 to 9) places.
std::string usd_fixed(int64_t nanousd, int decimals);
// The exact decimal without a sign for dollars: 1234500 → "0.001234500".
std::string exact_usd(int64_t nanousd);
// USD as a number for JSON and charts (display only; sums are done in nano-dollars).
inline double to_usd(int64_t nanousd) { return static_cast<double>(nanousd) / 1e9; }

}  // namespace parley
