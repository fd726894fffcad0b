#include "builtins/chart.h"

#include <cairo.h>
#include <dlfcn.h>
#include <fmt/format.h>
#include <librsvg/rsvg.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <exception>
#include <memory>
#include <mutex>
#include <utility>

#include "parley/base/base64.h"
#include "parley/base/text.h"

namespace parley::capabilities::builtins {
namespace {
namespace chart_detail {

constexpr const char* kFont = "DejaVu Sans, Liberation Sans, Arial, sans-serif";

std::string hex(Rgb c) { return fmt::format("#{:02x}{:02x}{:02x}", c.r, c.g, c.b); }

// The document's opening: its size, a background covering it, and the title.
std::string open_svg(int width, int height, std::string_view title) {
  return fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" font-family=\"{2}\">\n"
      "<rect x=\"0\" y=\"0\" width=\"{0}\" height=\"{1}\" fill=\"{3}\"/>\n"
      "<text x=\"20\" y=\"{4}\" font-size=\"16\" font-weight=\"bold\" fill=\"{5}\">{6}</text>\n",
      width, height, kFont, hex(kChartBackground), kChartTitleBaseline, hex(kChartText),
      xml_text(title));
}

// `text` cut to `max` characters, with an ellipsis when cut (a name that long would not fit).
std::string cut_chars(std::string_view text, size_t max) {
  const std::string valid = valid_utf8(text);
  if (utf8_length(valid) <= max) return valid;
  return std::string(utf8_first_chars(valid, max - 1)) + "…";
}

// ---- the PNG

// librsvg and cairo are loaded when the first chart is drawn, not when parley starts: with
// what they bring (GLib's objects, pango, pixman, freetype, fontconfig, X11's client
// library, …) they are several MiB of every process's memory, and most processes never draw.
// The headers give the types; the functions are looked up once. Loaded, they stay loaded.
struct Graphics {
  decltype(&rsvg_handle_new_from_data) handle_new_from_data = nullptr;
  decltype(&rsvg_handle_render_document) render_document = nullptr;
  decltype(&g_object_unref) object_unref = nullptr;
  decltype(&g_error_free) error_free = nullptr;
  decltype(&cairo_image_surface_create) image_surface_create = nullptr;
  decltype(&cairo_surface_status) surface_status = nullptr;
  decltype(&cairo_surface_destroy) surface_destroy = nullptr;
  decltype(&cairo_surface_flush) surface_flush = nullptr;
  decltype(&cairo_surface_write_to_png_stream) write_to_png_stream = nullptr;
  decltype(&cairo_create) create = nullptr;
  decltype(&cairo_status) status = nullptr;
  decltype(&cairo_destroy) destroy = nullptr;
  decltype(&cairo_set_source_rgb) set_source_rgb = nullptr;
  decltype(&cairo_paint) paint = nullptr;
  decltype(&cairo_status_to_string) status_to_string = nullptr;
  std::string error;  // why they could not be loaded; empty: loaded
};

template <typename F>
bool look_up(void* library, const char* name, F& out, std::string& error) {
  // POSIX's dlsym returns functions as void*; converting back is what it is for.
  out = reinterpret_cast<F>(::dlsym(library, name));  // NOLINT(*-reinterpret-cast)
  if (out == nullptr && error.empty()) error = fmt::format("{} not found in it", name);
  return out != nullptr;
}

const Graphics& graphics() {
  static Graphics g;
  static std::once_flag once;
  std::call_once(once, [] {
    constexpr const char* kRsvg = "librsvg-2.so.2";
    constexpr const char* kCairo = "libcairo.so.2";
    void* rsvg = ::dlopen(kRsvg, RTLD_NOW | RTLD_LOCAL);
    void* cairo = rsvg != nullptr ? ::dlopen(kCairo, RTLD_NOW | RTLD_LOCAL) : nullptr;
    if (rsvg == nullptr || cairo == nullptr) {
      const char* why = ::dlerror();
      g.error = fmt::format("{} could not be loaded: {}", rsvg == nullptr ? kRsvg : kCairo,
                            why != nullptr ? why : "no reason given");
      return;
    }
    std::string& e = g.error;
    look_up(rsvg, "rsvg_handle_new_from_data", g.handle_new_from_data, e);
    look_up(rsvg, "rsvg_handle_render_document", g.render_document, e);
    look_up(rsvg, "g_object_unref", g.object_unref, e);  // librsvg's GLib
    look_up(rsvg, "g_error_free", g.error_free, e);
    look_up(cairo, "cairo_image_surface_create", g.image_surface_create, e);
    look_up(cairo, "cairo_surface_status", g.surface_status, e);
    look_up(cairo, "cairo_surface_destroy", g.surface_destroy, e);
    look_up(cairo, "cairo_surface_flush", g.surface_flush, e);
    look_up(cairo, "cairo_surface_write_to_png_stream", g.write_to_png_stream, e);
    look_up(cairo, "cairo_create", g.create, e);
    look_up(cairo, "cairo_status", g.status, e);
    look_up(cairo, "cairo_destroy", g.destroy, e);
    look_up(cairo, "cairo_set_source_rgb", g.set_source_rgb, e);
    look_up(cairo, "cairo_paint", g.paint, e);
    look_up(cairo, "cairo_status_to_string", g.status_to_string, e);
    if (!e.empty()) e = fmt::format("{} and {} are not usable: {}", kRsvg, kCairo, e);
  });
  return g;
}

struct GObjectUnref {
  void operator()(RsvgHandle* p) const noexcept { graphics().object_unref(p); }
};
struct GErrorFree {
  void operator()(GError* e) const noexcept { graphics().error_free(e); }
};
struct SurfaceDestroy {
  void operator()(cairo_surface_t* s) const noexcept { graphics().surface_destroy(s); }
};
struct CairoDestroy {
  void operator()(cairo_t* c) const noexcept { graphics().destroy(c); }
};
using HandlePtr = std::unique_ptr<RsvgHandle, GObjectUnref>;
using ErrorPtr = std::unique_ptr<GError, GErrorFree>;
using SurfacePtr = std::unique_ptr<cairo_surface_t, SurfaceDestroy>;
using CairoPtr = std::unique_ptr<cairo_t, CairoDestroy>;

std::string message_of(const ErrorPtr& e) {
  return e && e->message != nullptr ? std::string(e->message) : std::string("no reason given");
}

// cairo's PNG writer hands over the file in pieces; a failed append stops it (no exception may
// cross cairo's C frames).
cairo_status_t append_png(void* closure, const unsigned char* data, unsigned int length) noexcept {
  try {
    static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
    return CAIRO_STATUS_SUCCESS;
  } catch (...) {
    return CAIRO_STATUS_NO_MEMORY;
  }
}

// render_png(), with an exception (an allocation that failed) as its error: a chart never takes
// its answer down with it.
Result<std::string> render_or_error(const Svg& svg) {
  try {
    return render_png(svg);
  } catch (const std::exception& e) {
    return fail(ErrorCode::internal, fmt::format("rendering threw: {}", e.what()));
  }
}

}  // namespace chart_detail
}  // namespace

using nlohmann::json;  // as in the other built-ins; chart_detail's helpers are named in each
                       // function instead, so as not to reach into the next files of a unity batch

std::string xml_text(std::string_view text) {
  // html_escape leaves valid UTF-8 (bad bytes become U+FFFD) with the five markup characters as
  // references; what remains is the characters XML forbids even as references.
  const std::string escaped = html_escape(text);
  std::string out;
  out.reserve(escaped.size());
  constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  for (size_t i = 0; i < escaped.size(); ++i) {
    const auto c = static_cast<unsigned char>(escaped[i]);
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
      out += kReplacement;
      continue;
    }
    // U+FFFE and U+FFFF: EF BF BE, EF BF BF.
    if (c == 0xEF && i + 2 < escaped.size() && static_cast<unsigned char>(escaped[i + 1]) == 0xBF &&
        (static_cast<unsigned char>(escaped[i + 2]) & 0xFE) == 0xBE) {
      out += kReplacement;
      i += 2;
      continue;
    }
    out += escaped[i];
  }
  return out;
}

std::string format_minor_units(int64_t minor, int exponent) {
  const bool negative = minor < 0;
  // Amounts stay far from the int64 limit (expenses allows 15 digits), so negating is safe.
  const int64_t magnitude = negative ? -minor : minor;
  const std::string sign = negative ? "-" : "";
  if (exponent <= 0) return sign + std::to_string(magnitude);
  int64_t unit = 1;
  for (int i = 0; i < exponent; ++i) unit *= 10;
  return sign + fmt::format("{}.{:0{}}", magnitude / unit, magnitude % unit, exponent);
}

// ---- mood

std::optional<Svg> mood_chart_svg(const MoodChart& chart) {
  using chart_detail::hex;
  using chart_detail::open_svg;
  namespace m = mood_chart;
  const bool any = std::any_of(chart.days.begin(), chart.days.end(),
                               [](const MoodChartDay& d) { return d.mood.has_value(); });
  if (!any) return std::nullopt;
  const auto n = static_cast<double>(chart.days.size());
  const auto x_of = [&](size_t i) {
    return m::kPlotLeft + (static_cast<double>(i) + 0.5) * m::kPlotWidth / n;
  };
  const auto y_of = [](double mood) {
    const double clamped = std::clamp(mood, double{m::kMoodBottom}, double{m::kMoodTop});
    return m::kPlotTop + (m::kMoodTop - clamped) * m::kPlotHeight / (m::kMoodTop - m::kMoodBottom);
  };
  const int bottom = m::kPlotTop + m::kPlotHeight;
  std::string s = open_svg(kChartWidth, m::kHeight, chart.title);

  // One grid line and label per point of the scale.
  s += fmt::format("<g stroke=\"{}\" stroke-width=\"1\" shape-rendering=\"crispEdges\">\n",
                   hex(m::kGrid));
  for (int v = m::kMoodBottom; v <= m::kMoodTop; ++v) {
    const double y = y_of(v);
    s += fmt::format("<line x1=\"{}\" y1=\"{:.2f}\" x2=\"{}\" y2=\"{:.2f}\"/>\n", m::kPlotLeft, y,
                     m::kPlotLeft + m::kPlotWidth, y);
  }
  s += "</g>\n";
  s += fmt::format("<g font-size=\"11\" fill=\"{}\" text-anchor=\"end\">\n", hex(kChartText));
  for (int v = m::kMoodBottom; v <= m::kMoodTop; ++v) {
    s += fmt::format("<text x=\"{}\" y=\"{:.2f}\">{}</text>\n", m::kPlotLeft - 10, y_of(v) + 4, v);
  }
  s += "</g>\n";

  // The day labels: every kLabelEvery-th day back from the last, so the last is always named.
  s += fmt::format("<g font-size=\"11\" fill=\"{}\" text-anchor=\"middle\">\n", hex(kChartText));
  for (size_t i = 0; i < chart.days.size(); ++i) {
    if ((chart.days.size() - 1 - i) % m::kLabelEvery != 0) continue;
    s += fmt::format(
        "<line x1=\"{0:.2f}\" y1=\"{1}\" x2=\"{0:.2f}\" y2=\"{2}\" stroke=\"{3}\" "
        "stroke-width=\"1\"/>\n<text x=\"{0:.2f}\" y=\"{4}\">{5}</text>\n",
        x_of(i), bottom, bottom + 5, hex(kChartText), bottom + 18, xml_text(chart.days[i].label));
  }
  s += "</g>\n";

  // Runs of consecutive days with a mood are joined; a day without one breaks the line.
  std::string run;
  size_t run_points = 0;
  const auto end_run = [&] {
    if (run_points > 1) {
      s += fmt::format(
          "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" "
          "stroke-linejoin=\"round\"/>\n",
          run, hex(m::kLine));
    }
    run.clear();
    run_points = 0;
  };
  for (size_t i = 0; i < chart.days.size(); ++i) {
    const auto& mood = chart.days[i].mood;
    if (!mood) {
      end_run();
      continue;
    }
    run += fmt::format("{}{:.2f},{:.2f}", run.empty() ? "" : " ", x_of(i), y_of(*mood));
    ++run_points;
  }
  end_run();
  s += fmt::format("<g fill=\"{}\">\n", hex(m::kMarker));
  for (size_t i = 0; i < chart.days.size(); ++i) {
    if (const auto& mood = chart.days[i].mood) {
      s += fmt::format("<circle cx=\"{:.2f}\" cy=\"{:.2f}\" r=\"{}\"/>\n", x_of(i), y_of(*mood),
                       m::kMarkerRadius);
    }
  }
  s += "</g>\n";
  s += fmt::format(
      "<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"{}\">Each day's average mood "
      "({} to {}); a gap is a day without a log.</text>\n",
      m::kPlotLeft, m::kHeight - 12, hex(kChartText), m::kMoodBottom, m::kMoodTop);
  s += "</svg>\n";
  return Svg{std::move(s), kChartWidth, m::kHeight};
}

// ---- habits

std::string_view to_string(HabitCell cell) {
  switch (cell) {
    case HabitCell::done: return "done";
    case HabitCell::skipped: return "skipped";
    case HabitCell::missed: return "missed";
    case HabitCell::not_due: return "not_due";
    case HabitCell::open: return "open";
  }
  return "not_due";
}

Rgb colour_of(HabitCell cell) {
  namespace h = habit_chart;
  switch (cell) {
    case HabitCell::done: return h::kDone;
    case HabitCell::skipped: return h::kSkipped;
    case HabitCell::missed: return h::kMissed;
    case HabitCell::not_due: return h::kNotDue;
    case HabitCell::open: return h::kOpen;
  }
  return h::kNotDue;
}

std::optional<Svg> habit_chart_svg(const HabitChart& chart) {
  using chart_detail::cut_chars;
  using chart_detail::hex;
  using chart_detail::open_svg;
  namespace h = habit_chart;
  if (chart.rows.empty()) return std::nullopt;
  const int height = h::height(chart.rows.size());
  std::string s = open_svg(kChartWidth, height, chart.title);
  const int name_right = h::kGridLeft - 8;
  s += fmt::format(
      "<defs><clipPath id=\"names\"><rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\"/>"
      "</clipPath></defs>\n",
      h::kGridLeft - 6, height);

  s += fmt::format("<g font-size=\"10\" fill=\"{}\">\n", hex(kChartText));
  for (size_t c = 0; c < chart.column_labels.size(); ++c) {
    if (chart.column_labels[c].empty()) continue;
    s += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n",
                     h::kGridLeft + static_cast<int>(c) * h::kPitch, h::kGridTop - 8,
                     xml_text(chart.column_labels[c]));
  }
  s += "</g>\n";

  s += fmt::format(
      "<g clip-path=\"url(#names)\" font-size=\"12\" fill=\"{}\" text-anchor=\"end\">\n",
      hex(kChartText));
  for (size_t r = 0; r < chart.rows.size(); ++r) {
    s += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", name_right,
                     h::kGridTop + static_cast<int>(r) * h::kRowHeight + 12,
                     xml_text(cut_chars(chart.rows[r].name, h::kMaxLabelChars)));
  }
  s += "</g>\n";

  // Cells on whole pixels, so that each is one flat colour.
  s += "<g shape-rendering=\"crispEdges\">\n";
  for (size_t r = 0; r < chart.rows.size(); ++r) {
    const auto& cells = chart.rows[r].cells;
    for (size_t c = 0; c < cells.size(); ++c) {
      s += fmt::format("<rect x=\"{0}\" y=\"{1}\" width=\"{3}\" height=\"{3}\" fill=\"{2}\"/>\n",
                       h::kGridLeft + static_cast<int>(c) * h::kPitch,
                       h::kGridTop + static_cast<int>(r) * h::kRowHeight, hex(colour_of(cells[c])),
                       h::kCell);
    }
  }
  s += "</g>\n";

  constexpr std::array<std::pair<HabitCell, std::string_view>, 5> kLegend{{
      {HabitCell::done, "done"},
      {HabitCell::skipped, "skipped (excused)"},
      {HabitCell::missed, "missed"},
      {HabitCell::not_due, "not due"},
      {HabitCell::open, "open today"},
  }};
  const int legend_y =
      h::kGridTop + static_cast<int>(chart.rows.size()) * h::kRowHeight + h::kLegendGap;
  s += fmt::format("<g font-size=\"12\" fill=\"{}\">\n", hex(kChartText));
  int x = h::kGridLeft;
  for (const auto& [cell, words] : kLegend) {
    s += fmt::format(
        "<rect x=\"{0}\" y=\"{1}\" width=\"{2}\" height=\"{2}\" fill=\"{3}\" "
        "shape-rendering=\"crispEdges\"/>\n<text x=\"{4}\" y=\"{5}\">{6}</text>\n",
        x, legend_y, h::kCell, hex(colour_of(cell)), x + h::kCell + 5, legend_y + 12, words);
    x += words.size() > 10 ? 150 : 100;
  }
  s += "</g>\n</svg>\n";
  return Svg{std::move(s), kChartWidth, height};
}

// ---- expenses

ExpenseScale expense_scale(int64_t largest) {
  largest = std::max<int64_t>(largest, 1);
  constexpr int64_t kMaxSteps = 5;
  int64_t magnitude = 1;
  for (;;) {
    for (const int64_t m : {1, 2, 5}) {
      const int64_t step = m * magnitude;
      if (step * kMaxSteps >= largest) {
        return {step, (largest + step - 1) / step * step};
      }
    }
    magnitude *= 10;
  }
}

std::optional<Svg> expense_chart_svg(const ExpenseChart& chart) {
  using chart_detail::cut_chars;
  using chart_detail::hex;
  using chart_detail::open_svg;
  namespace e = expense_chart;
  if (chart.panels.empty()) return std::nullopt;
  int height = e::kPanelsTop + e::kBottomMargin;
  for (const auto& p : chart.panels) height += e::panel_height(p.bars.size());
  std::string s = open_svg(kChartWidth, height, chart.title);
  s += fmt::format(
      "<defs><clipPath id=\"labels\"><rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\"/>"
      "</clipPath></defs>\n",
      e::kBarLeft - 4, height);
  int top = e::kPanelsTop;
  for (const auto& p : chart.panels) {
    int64_t largest = 0;
    for (const auto& b : p.bars) largest = std::max(largest, b.minor);
    const ExpenseScale scale = expense_scale(largest);
    const auto x_of = [&](int64_t minor) {
      return e::kBarLeft +
             static_cast<double>(minor) / static_cast<double>(scale.max) * e::kBarMaxLength;
    };
    const int bars_top = top + e::kPanelHeader;
    const int bars_bottom = bars_top + static_cast<int>(p.bars.size()) * e::kBarPitch;
    s += fmt::format(
        "<text x=\"20\" y=\"{}\" font-size=\"14\" font-weight=\"bold\" fill=\"{}\">{}</text>\n",
        top + 20, hex(kChartText), xml_text(p.header));
    // Whole major units on the ticks when the step is whole ("10", not "10.00").
    int64_t unit = 1;
    for (int i = 0; i < p.exponent; ++i) unit *= 10;
    const int tick_exponent = scale.step % unit == 0 ? 0 : p.exponent;
    s += fmt::format("<g stroke=\"{}\" stroke-width=\"1\" shape-rendering=\"crispEdges\">\n",
                     hex(e::kGrid));
    for (int64_t t = 0; t <= scale.max; t += scale.step) {
      s += fmt::format("<line x1=\"{0:.2f}\" y1=\"{1}\" x2=\"{0:.2f}\" y2=\"{2}\"/>\n", x_of(t),
                       bars_top, bars_bottom);
    }
    s += "</g>\n";
    s += fmt::format("<g font-size=\"10\" fill=\"{}\" text-anchor=\"middle\">\n", hex(kChartText));
    for (int64_t t = 0; t <= scale.max; t += scale.step) {
      const int64_t shown = tick_exponent == 0 ? t / unit : t;
      s += fmt::format("<text x=\"{:.2f}\" y=\"{}\">{}</text>\n", x_of(t), bars_bottom + 15,
                       format_minor_units(shown, tick_exponent));
    }
    s += "</g>\n";
    s += fmt::format("<g fill=\"{}\">\n", hex(e::kBar));
    for (size_t i = 0; i < p.bars.size(); ++i) {
      s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{:.3f}\" height=\"{}\"/>\n", e::kBarLeft,
                       bars_top + static_cast<int>(i) * e::kBarPitch + e::kBarInset,
                       x_of(p.bars[i].minor) - e::kBarLeft, e::kBarHeight);
    }
    s += "</g>\n";
    s += fmt::format(
        "<g clip-path=\"url(#labels)\" font-size=\"12\" fill=\"{}\" text-anchor=\"end\">\n",
        hex(kChartText));
    for (size_t i = 0; i < p.bars.size(); ++i) {
      s += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", e::kBarLeft - 8,
                       bars_top + static_cast<int>(i) * e::kBarPitch + e::kBarInset + 12,
                       xml_text(cut_chars(p.bars[i].label, 24)));
    }
    s += "</g>\n";
    s += fmt::format("<g font-size=\"12\" fill=\"{}\">\n", hex(kChartText));
    for (size_t i = 0; i < p.bars.size(); ++i) {
      s += fmt::format("<text x=\"{:.2f}\" y=\"{}\">{} {}</text>\n", x_of(p.bars[i].minor) + 6,
                       bars_top + static_cast<int>(i) * e::kBarPitch + e::kBarInset + 12,
                       format_minor_units(p.bars[i].minor, p.exponent), xml_text(p.currency));
    }
    s += "</g>\n";
    top += e::panel_height(p.bars.size());
  }
  s += "</svg>\n";
  return Svg{std::move(s), kChartWidth, height};
}

// ---- rendering

Result<std::string> render_png(const Svg& svg) {
  using chart_detail::append_png;
  using chart_detail::CairoPtr;
  using chart_detail::ErrorPtr;
  using chart_detail::HandlePtr;
  using chart_detail::message_of;
  using chart_detail::SurfacePtr;
  if (svg.width < 1 || svg.height < 1 || svg.width > kMaxChartSide || svg.height > kMaxChartSide) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("a picture of {}x{} pixels is out of range (1 to {} a side)", svg.width,
                            svg.height, kMaxChartSide));
  }
  const chart_detail::Graphics& g = chart_detail::graphics();
  if (!g.error.empty()) return fail(ErrorCode::unavailable, g.error);
  GError* raw_error = nullptr;
  HandlePtr handle(g.handle_new_from_data(reinterpret_cast<const guint8*>(svg.text.data()),
                                          svg.text.size(), &raw_error));
  ErrorPtr error(raw_error);
  if (!handle) {
    return fail(ErrorCode::internal,
                fmt::format("librsvg could not read the SVG: {}", message_of(error)));
  }
  // RGB24: a picture with no transparency, so the PNG has no alpha channel.
  SurfacePtr surface(g.image_surface_create(CAIRO_FORMAT_RGB24, svg.width, svg.height));
  if (const auto st = g.surface_status(surface.get()); st != CAIRO_STATUS_SUCCESS) {
    return fail(ErrorCode::internal, fmt::format("cairo could not make a {}x{} image: {}",
                                                 svg.width, svg.height, g.status_to_string(st)));
  }
  {
    CairoPtr cr(g.create(surface.get()));
    if (const auto st = g.status(cr.get()); st != CAIRO_STATUS_SUCCESS) {
      return fail(ErrorCode::internal,
                  fmt::format("cairo could not draw on the image: {}", g.status_to_string(st)));
    }
    // The new image is black; the SVG paints its own background, this one shows if it did not.
    g.set_source_rgb(cr.get(), 1.0, 1.0, 1.0);
    g.paint(cr.get());
    const RsvgRectangle viewport{0.0, 0.0, static_cast<double>(svg.width),
                                 static_cast<double>(svg.height)};
    raw_error = nullptr;
    const gboolean drawn = g.render_document(handle.get(), cr.get(), &viewport, &raw_error);
    error.reset(raw_error);
    if (drawn == FALSE) {
      return fail(ErrorCode::internal,
                  fmt::format("librsvg could not render the SVG: {}", message_of(error)));
    }
    if (const auto st = g.status(cr.get()); st != CAIRO_STATUS_SUCCESS) {
      return fail(ErrorCode::internal,
                  fmt::format("cairo failed while drawing: {}", g.status_to_string(st)));
    }
  }
  g.surface_flush(surface.get());
  std::string png;
  if (const auto st = g.write_to_png_stream(surface.get(), append_png, &png);
      st != CAIRO_STATUS_SUCCESS) {
    return fail(ErrorCode::internal,
                fmt::format("cairo could not write the PNG: {}", g.status_to_string(st)));
  }
  return png;
}

void attach_chart(json& result, std::string_view capability, const std::string& filename,
                  json numbers, const std::optional<Svg>& svg, std::string_view nothing) {
  if (!svg) {
    result["chart"] = nullptr;
    result["chart_note"] = fmt::format("nothing to draw: {}", nothing);
    return;
  }
  auto png = chart_detail::render_or_error(*svg);
  result["chart"] = std::move(numbers);
  if (!png) {
    const std::string why = fmt::format("{}: the chart {} could not be drawn: {}", capability,
                                        filename, png.error().message);
    spdlog::warn("{}", why);
    result["chart_error"] = why;
    return;
  }
  json& files = result["attachments"];
  if (!files.is_array()) files = json::array();
  files.push_back(
      {{"filename", filename}, {"media_type", "image/png"}, {"base64", base64_encode(*png)}});
}

}  // namespace parley::capabilities::builtins
