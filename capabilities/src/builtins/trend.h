// Trends in text, for every channel: a sparkline (▁▂▃▄▅▆▇█) of a series with gaps, and the
// mean of what is there (private to the built-ins).
//
// Thread safety: pure functions.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::capabilities::builtins {

// One character per value: `lo` is the lowest bar, `hi` the highest, nullopt (no data) a
// middle dot.
inline std::string sparkline(const std::vector<std::optional<double>>& values, double lo,
                             double hi) {
  static constexpr std::array<std::string_view, 8> kBars{"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  std::string out;
  for (const auto& v : values) {
    if (!v) {
      out += "·";
      continue;
    }
    double t = hi > lo ? (*v - lo) / (hi - lo) : 0.5;
    t = std::clamp(t, 0.0, 1.0);
    const auto i = static_cast<size_t>(std::lround(t * static_cast<double>(kBars.size() - 1)));
    out += kBars[i];
  }
  return out;
}

// The mean of the values present, or nullopt when there are none.
inline std::optional<double> mean_of(const std::vector<std::optional<double>>& values) {
  double sum = 0;
  int n = 0;
  for (const auto& v : values) {
    if (v) {
      sum += *v;
      ++n;
    }
  }
  if (n == 0) return std::nullopt;
  return sum / n;
}

}  // namespace parley::capabilities::builtins
