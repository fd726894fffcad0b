// Reads the built-ins' charts back from their PNG bytes: decodes a PNG with cairo, and from the
// pixels alone — with only the geometry constants of builtins/chart.h, none of chart.cpp's code —
// recovers what was drawn: a day's mood from the height of its marker, a habit's day from the
// colour of its cell, a category's amount from the length of its bar. For the chart tests and
// the mood, habits and expenses tests (the capabilities_tests target links cairo for it).
#pragma once

#include <cairo.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "builtins/chart.h"
#include "parley/base/base64.h"

namespace parley::capabilities::chart_reader {

using builtins::HabitCell;
using builtins::Rgb;

// A decoded PNG; owns its cairo surface.
class Picture {
 public:
  // The picture `png` holds, or nullopt (with a test failure saying why) when it is not a PNG
  // cairo can read.
  static std::optional<Picture> decode(std::string_view png) {
    Reader reader{png, 0};
    Surface surface(cairo_image_surface_create_from_png_stream(&Reader::read, &reader));
    if (const auto st = cairo_surface_status(surface.get()); st != CAIRO_STATUS_SUCCESS) {
      ADD_FAILURE() << "cairo could not read the PNG: " << cairo_status_to_string(st);
      return std::nullopt;
    }
    cairo_surface_flush(surface.get());
    return Picture(std::move(surface));
  }

  [[nodiscard]] int width() const { return cairo_image_surface_get_width(surface_.get()); }
  [[nodiscard]] int height() const { return cairo_image_surface_get_height(surface_.get()); }

  // The colour at pixel (x, y); outside the picture, a colour no chart uses.
  [[nodiscard]] Rgb at(int x, int y) const {
    if (x < 0 || y < 0 || x >= width() || y >= height()) return Rgb{1, 2, 3};
    const unsigned char* row =
        cairo_image_surface_get_data(surface_.get()) +
        static_cast<ptrdiff_t>(y) * cairo_image_surface_get_stride(surface_.get());
    // RGB24 and ARGB32 pixels are native-endian 32-bit words, 0xAARRGGBB; opaque throughout.
    uint32_t p = 0;
    std::memcpy(&p, row + static_cast<ptrdiff_t>(x) * 4, sizeof p);
    return Rgb{static_cast<uint8_t>((p >> 16) & 0xFF), static_cast<uint8_t>((p >> 8) & 0xFF),
               static_cast<uint8_t>(p & 0xFF)};
  }

 private:
  struct Destroy {
    void operator()(cairo_surface_t* s) const noexcept { cairo_surface_destroy(s); }
  };
  using Surface = std::unique_ptr<cairo_surface_t, Destroy>;
  struct Reader {
    std::string_view bytes;
    size_t at;
    static cairo_status_t read(void* closure, unsigned char* data, unsigned int length) {
      auto* r = static_cast<Reader*>(closure);
      if (r->bytes.size() - r->at < length) return CAIRO_STATUS_READ_ERROR;
      std::memcpy(data, r->bytes.data() + r->at, length);
      r->at += length;
      return CAIRO_STATUS_SUCCESS;
    }
  };
  explicit Picture(Surface s) : surface_(std::move(s)) {}
  Surface surface_;
};

// Whether every channel of `c` is within `tolerance` of `want`'s: an anti-aliased edge pixel is
// a blend of the shape and what lies under it, a fully covered one the shape's own colour.
inline bool near(Rgb c, Rgb want, int tolerance) {
  return std::abs(c.r - want.r) <= tolerance && std::abs(c.g - want.g) <= tolerance &&
         std::abs(c.b - want.b) <= tolerance;
}

// The PNG of a capability's answer: its one attachment, which must be a PNG in base64.
inline std::optional<std::string> png_of(const nlohmann::json& answer,
                                         const std::string& filename) {
  if (!answer.contains("attachments") || answer["attachments"].size() != 1) {
    ADD_FAILURE() << "no single attachment in " << answer.dump().substr(0, 400);
    return std::nullopt;
  }
  const auto& file = answer["attachments"][0];
  EXPECT_EQ(file["filename"], filename);
  EXPECT_EQ(file["media_type"], "image/png");
  EXPECT_FALSE(file.contains("text")) << "binary files travel as base64";
  auto bytes = base64_decode(file.value("base64", std::string()));
  if (!bytes) {
    ADD_FAILURE() << "the attachment's base64 does not decode";
  }
  return bytes;
}

// The width and height a PNG's header (IHDR, right after the signature) states.
inline std::optional<std::pair<int, int>> png_header_size(std::string_view png) {
  constexpr std::string_view kSignature{"\x89PNG\r\n\x1a\n", 8};
  if (png.size() < 24 || png.substr(0, 8) != kSignature || png.substr(12, 4) != "IHDR") {
    return std::nullopt;
  }
  const auto be32 = [&](size_t at) {
    int v = 0;
    for (size_t i = 0; i < 4; ++i) v = v * 256 + static_cast<unsigned char>(png[at + i]);
    return v;
  };
  return std::pair{be32(16), be32(20)};
}

// ---- mood: the marker of day `day` of `days`, read as a mood

// The centre of the day's marker: the middle of the run of marker-coloured pixels in the
// column through it (the marker is the only thing of that colour).
inline std::optional<double> read_mood(const Picture& p, size_t day, size_t days) {
  namespace m = builtins::mood_chart;
  const double centre_x =
      m::kPlotLeft + (static_cast<double>(day) + 0.5) * m::kPlotWidth / static_cast<double>(days);
  const int x = static_cast<int>(std::floor(centre_x));
  const int margin = static_cast<int>(m::kMarkerRadius) + 2;
  std::optional<int> first;
  int last = 0;
  for (int y = m::kPlotTop - margin; y <= m::kPlotTop + m::kPlotHeight + margin; ++y) {
    if (!near(p.at(x, y), m::kMarker, 24)) continue;
    if (!first) first = y;
    last = y;
  }
  if (!first) return std::nullopt;
  const double centre_y = (*first + last + 1) / 2.0;  // pixel row y spans [y, y + 1)
  return m::kMoodTop - (centre_y - m::kPlotTop) / m::kPlotHeight * (m::kMoodTop - m::kMoodBottom);
}

// One pixel of the mood axis, in mood points.
inline constexpr double kMoodPerPixel =
    static_cast<double>(builtins::mood_chart::kMoodTop - builtins::mood_chart::kMoodBottom) /
    builtins::mood_chart::kPlotHeight;

// ---- habits: the state a cell's colour stands for

inline std::optional<HabitCell> read_cell(const Picture& p, size_t row, size_t column) {
  namespace h = builtins::habit_chart;
  const int x = h::kGridLeft + static_cast<int>(column) * h::kPitch + h::kCell / 2;
  const int y = h::kGridTop + static_cast<int>(row) * h::kRowHeight + h::kCell / 2;
  const Rgb c = p.at(x, y);
  for (const auto cell : {HabitCell::done, HabitCell::skipped, HabitCell::missed,
                          HabitCell::not_due, HabitCell::open}) {
    if (near(c, builtins::colour_of(cell), 2)) return cell;
  }
  return std::nullopt;
}

inline std::optional<HabitCell> cell_named(std::string_view name) {
  for (const auto cell : {HabitCell::done, HabitCell::skipped, HabitCell::missed,
                          HabitCell::not_due, HabitCell::open}) {
    if (builtins::to_string(cell) == name) return cell;
  }
  return std::nullopt;
}

// ---- expenses: the length of a bar in pixels

// The top of panel `index` when the panels before it have `bars[i]` bars each.
inline int panel_top(const std::vector<size_t>& bars, size_t index) {
  int top = builtins::expense_chart::kPanelsTop;
  for (size_t i = 0; i < index; ++i) top += builtins::expense_chart::panel_height(bars[i]);
  return top;
}

// The length of bar `bar` of the panel at `top`: the fully covered pixels along its middle row,
// plus the coverage of the anti-aliased pixel at its end (read from the red channel, where the
// bar and the background differ most).
inline double read_bar_length(const Picture& p, int top, size_t bar) {
  namespace e = builtins::expense_chart;
  const int y = top + e::kPanelHeader + static_cast<int>(bar) * e::kBarPitch + e::kBarInset +
                e::kBarHeight / 2;
  int x = e::kBarLeft;
  while (x < e::kBarLeft + e::kBarMaxLength + 2 && near(p.at(x, y), e::kBar, 24)) ++x;
  const double bar_r = e::kBar.r;
  const double bg_r = builtins::kChartBackground.r;
  const double coverage = std::clamp((bg_r - p.at(x, y).r) / (bg_r - bar_r), 0.0, 1.0);
  return (x - e::kBarLeft) + coverage;
}

}  // namespace parley::capabilities::chart_reader
