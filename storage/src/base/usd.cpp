#include "parley/base/usd.h"

#include <fmt/format.h>

namespace parley {

namespace {

// |nanousd| through unsigned: INT64_MIN has no positive counterpart.
uint64_t magnitude(int64_t nanousd) {
  return nanousd < 0 ? 0 - static_cast<uint64_t>(nanousd) : static_cast<uint64_t>(nanousd);
}

}  // namespace

std::string usd_fixed(int64_t nanousd, int decimals) {
  decimals = decimals < 0 ? 0 : (decimals > 9 ? 9 : decimals);
  const uint64_t v = magnitude(nanousd);
  uint64_t unit = 1;  // nano-dollars per last shown digit
  for (int i = decimals; i < 9; ++i) unit *= 10;
  const uint64_t scaled = v / unit + (v % unit >= (unit + 1) / 2 ? 1 : 0);  // half up
  uint64_t denom = 1;
  for (int i = 0; i < decimals; ++i) denom *= 10;
  const char* sign = nanousd < 0 && scaled != 0 ? "-" : "";
  if (decimals == 0) return fmt::format("{}${}", sign, scaled);
  return fmt::format("{}${}.{:0{}}", sign, scaled / denom, scaled % denom, decimals);
}

std::string format_usd(int64_t nanousd) {
  return usd_fixed(nanousd, magnitude(nanousd) < 1'000'000'000u ? 4 : 2);
}

std::string exact_usd(int64_t nanousd) {
  const uint64_t v = magnitude(nanousd);
  return fmt::format("{}{}.{:09}", nanousd < 0 ? "-" : "", v / 1'000'000'000u, v % 1'000'000'000u);
}

}  // namespace parley
