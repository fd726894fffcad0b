// Charts of the personal records as pictures (private to the built-ins): mood over a run of days,
// a calendar of habit completion, spending per category in one panel per currency. Each is built
// as SVG text from the numbers a capability already computed, and turned into PNG bytes with
// librsvg and cairo; attach_chart() puts the picture and the numbers drawn into a capability's
// JSON answer.
//
// Every text that comes from a user (habit names, categories, titles) goes through xml_text():
// no name can end an element, open a new one or reach outside the document. The SVG refers to
// nothing outside itself and is parsed with no base file, so librsvg loads no other resource.
//
// The geometry is fixed and stated below (image size, the plot area's origin and size, row
// height, colours): a picture can be read back from its pixels, which the tests do. All
// coordinates are SVG user units, one pixel each (the picture is rendered at its own size).
//
// Thread safety: pure functions, safe from any thread; render_png() uses only objects of its
// own (librsvg and cairo keep their process-wide caches thread-safe).
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parley/base/result.h"

namespace parley::capabilities::builtins {

// A picture as SVG text and its size in pixels.
struct Svg {
  std::string text;
  int width = 0;
  int height = 0;
};

struct Rgb {
  uint8_t r = 0;
  uint8_t g = 0;
  uint8_t b = 0;
  friend constexpr bool operator==(const Rgb&, const Rgb&) = default;
};

// Every chart is this wide, on this background, its text (titles, labels, amounts) in
// kChartText, its title's baseline at kChartTitleBaseline.
inline constexpr int kChartWidth = 800;
inline constexpr Rgb kChartBackground{255, 255, 255};
inline constexpr Rgb kChartText{0x33, 0x33, 0x33};
inline constexpr int kChartTitleBaseline = 26;
// The largest picture render_png() makes (either side): larger ones are refused, not drawn.
inline constexpr int kMaxChartSide = 4096;

// ---- mood over a run of days (the 30 days of /mood month; 7 for a week)
//
// One marker per day that has a mood: a filled circle of kMoodMarker centred on the day's
// column at the height of its average mood, consecutive days joined by kMoodLine. A day without
// a log draws nothing (a gap, and no line across it).
namespace mood_chart {
inline constexpr int kHeight = 380;
// The plot area: mood kMoodTop along its top edge, kMoodBottom along its bottom edge
// (kPlotTop + kPlotHeight), so 30 pixels a point. The days share its width equally: day i of n
// is centred at x = kPlotLeft + (i + 0.5) * kPlotWidth / n.
inline constexpr int kPlotLeft = 60;
inline constexpr int kPlotTop = 50;
inline constexpr int kPlotWidth = 700;
inline constexpr int kPlotHeight = 270;
inline constexpr int kMoodBottom = 1;
inline constexpr int kMoodTop = 10;
inline constexpr double kMarkerRadius = 5;
inline constexpr Rgb kMarker{0x15, 0x65, 0xc0};
inline constexpr Rgb kLine{0x90, 0xca, 0xf9};
inline constexpr Rgb kGrid{0xe6, 0xe6, 0xe6};
// Every kLabelEvery-th day, counted back from the last, has its label under the plot.
inline constexpr size_t kLabelEvery = 7;
}  // namespace mood_chart

struct MoodChartDay {
  std::string label;           // e.g. "23 Nov", shown under some days
  std::optional<double> mood;  // the day's average, kMoodBottom…kMoodTop; nullopt: no log
};

struct MoodChart {
  std::string title;
  std::vector<MoodChartDay> days;  // oldest first
};

// nullopt when no day has a mood: nothing to draw.
std::optional<Svg> mood_chart_svg(const MoodChart& chart);

// ---- habit completion calendar
//
// One row per habit, one square cell per day (oldest on the left), filled with the colour of
// the day's state; a legend of the five colours under the grid.
namespace habit_chart {
inline constexpr int kDays = 35;  // five weeks, today the last
// Cell (row r, column c) covers the square of side kCell from
// (kGridLeft + c * kPitch, kGridTop + r * kRowHeight); the space between cells is background.
inline constexpr int kGridLeft = 210;
inline constexpr int kGridTop = 70;
inline constexpr int kPitch = 16;
inline constexpr int kRowHeight = 16;
inline constexpr int kCell = 14;
// Habit names are written right-aligned before the grid, cut to kMaxLabelChars characters and
// clipped to x < kGridLeft - 6.
inline constexpr size_t kMaxLabelChars = 28;
// The legend's swatches sit kLegendGap below the last row.
inline constexpr int kLegendGap = 24;
inline constexpr int kLegendHeight = 40;
inline constexpr Rgb kDone{0x2e, 0x7d, 0x32};     // green
inline constexpr Rgb kSkipped{0xf9, 0xa8, 0x25};  // amber: excused, neither breaks nor counts
inline constexpr Rgb kMissed{0xc6, 0x28, 0x28};   // red
inline constexpr Rgb kNotDue{0xe0, 0xe0, 0xe0};   // grey: before the start, not scheduled
inline constexpr Rgb kOpen{0x64, 0xb5, 0xf6};     // blue: today, not logged yet
// The height of a calendar of `rows` habits.
constexpr int height(size_t rows) {
  return kGridTop + static_cast<int>(rows) * kRowHeight + kLegendGap + kLegendHeight;
}
}  // namespace habit_chart

enum class HabitCell { done, skipped, missed, not_due, open };
std::string_view to_string(HabitCell cell);
Rgb colour_of(HabitCell cell);

struct HabitChartRow {
  std::string name;
  std::vector<HabitCell> cells;  // one per day, oldest first
};

struct HabitChart {
  std::string title;
  std::vector<std::string> column_labels;  // one per day; empty: no label over that column
  std::vector<HabitChartRow> rows;
};

// nullopt when there are no rows: nothing to draw.
std::optional<Svg> habit_chart_svg(const HabitChart& chart);

// ---- spending per category, one panel per currency
//
// Panels are stacked from kPanelsTop, each its own scale (currencies are never drawn against
// each other): a header line (currency, total), one horizontal bar per category, then the
// scale's tick labels. Bar i of a panel whose top is `top` is the rectangle from
// (kBarLeft, top + kPanelHeader + i * kBarPitch + kBarInset) of height kBarHeight and length
// total / scale_max * kBarMaxLength; its category is written before it, its amount after it.
namespace expense_chart {
inline constexpr int kPanelsTop = 40;
inline constexpr int kPanelHeader = 30;
inline constexpr int kBarPitch = 24;
inline constexpr int kBarHeight = 16;
inline constexpr int kBarInset = (kBarPitch - kBarHeight) / 2;
inline constexpr int kBarLeft = 170;
inline constexpr int kBarMaxLength = 460;
inline constexpr int kAxisHeight = 22;  // tick labels under the bars
inline constexpr int kPanelGap = 14;
inline constexpr int kBottomMargin = 8;
// Limits that keep a picture readable and small: the capability draws at most kMaxBars bars a
// panel (the smallest categories beyond them as one bar) and kMaxPanels currencies.
inline constexpr size_t kMaxBars = 12;
inline constexpr size_t kMaxPanels = 6;
inline constexpr Rgb kBar{0x4e, 0x79, 0xa7};
inline constexpr Rgb kGrid{0xe6, 0xe6, 0xe6};
constexpr int panel_height(size_t bars) {
  return kPanelHeader + static_cast<int>(bars) * kBarPitch + kAxisHeight + kPanelGap;
}
}  // namespace expense_chart

struct ExpenseBar {
  std::string label;  // the category
  int64_t minor = 0;  // > 0
};

struct ExpensePanel {
  std::string currency;          // ISO 4217
  int exponent = 2;              // its minor-unit digits
  std::string header;            // e.g. "EUR: 123.45 in 3 expenses"
  std::vector<ExpenseBar> bars;  // drawn in this order
};

struct ExpenseChart {
  std::string title;
  std::vector<ExpensePanel> panels;
};

// The scale of a panel whose largest bar is `largest` minor units: ticks every step (1, 2 or 5
// times a power of ten minor units, at most five steps), and the scale's end, the first tick at
// or above `largest`.
struct ExpenseScale {
  int64_t step = 1;
  int64_t max = 1;
};
ExpenseScale expense_scale(int64_t largest);

// nullopt when there are no panels: nothing to draw.
std::optional<Svg> expense_chart_svg(const ExpenseChart& chart);

// ---- common

// 1234 with exponent 2 → "12.34"; 1500 with 0 → "1500"; 1250 with 3 → "1.250".
std::string format_minor_units(int64_t minor, int exponent);

// `text` as XML character data or a quoted attribute value: & < > " ' as references, invalid
// UTF-8 and the characters XML 1.0 cannot hold (C0 controls but tab, LF and CR; U+FFFE, U+FFFF)
// as U+FFFD.
std::string xml_text(std::string_view text);

// The PNG of `svg`, rendered at its size onto a white background. Errors (invalid_argument for
// a size out of range, internal for librsvg and cairo failures) name what failed.
Result<std::string> render_png(const Svg& svg);

// Puts a chart into a capability's `result`:
// - `svg` present and rendered: "chart" is `numbers` (the exact numbers drawn) and the PNG is
//   appended to "attachments" as {"filename", "media_type": "image/png", "base64"}.
// - `svg` nullopt (nothing to draw): "chart" is null and "chart_note" says `nothing`.
// - rendering failed: "chart" is still `numbers`, no attachment, "chart_error" says why (also
//   logged). The answer stands either way: a chart never fails a command.
void attach_chart(nlohmann::json& result, std::string_view capability, const std::string& filename,
                  nlohmann::json numbers, const std::optional<Svg>& svg, std::string_view nothing);

}  // namespace parley::capabilities::builtins
