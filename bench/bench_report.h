// What every benchmark prints: figures as `name value unit` lines in the order measured, or
// one JSON object (with a "units" sub-object) with --json; notes go to stderr. Percentiles are
// nearest-rank. Header-only; single-threaded use.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace parley::bench {

// Nearest-rank percentile (p in [0, 1]) of an ascending vector.
inline double percentile_sorted(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return std::numeric_limits<double>::quiet_NaN();
  const auto rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

template <typename... Args>
void note(fmt::format_string<Args...> format, Args&&... args) {
  std::cerr << fmt::format(format, std::forward<Args>(args)...) << '\n';
}

class Report {
 public:
  explicit Report(bool json) : json_(json) {}

  void add(const std::string& name, double value, const std::string& unit, int decimals) {
    const double scale = std::pow(10.0, decimals);
    const double rounded = std::round(value * scale) / scale;
    if (decimals == 0 && std::isfinite(rounded)) {
      figures_[name] = static_cast<int64_t>(rounded);
    } else {
      figures_[name] = rounded;
    }
    units_[name] = unit;
    if (!json_) std::cout << fmt::format("{} {:.{}f} {}", name, value, decimals, unit) << std::endl;
  }

  void finish() {
    if (!json_) return;
    figures_["units"] = units_;
    std::cout << figures_.dump() << std::endl;
  }

 private:
  bool json_;
  nlohmann::ordered_json figures_ = nlohmann::ordered_json::object();
  nlohmann::ordered_json units_ = nlohmann::ordered_json::object();
};

}  // namespace parley::bench
