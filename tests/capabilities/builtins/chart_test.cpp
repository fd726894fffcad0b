// The chart unit (builtins/chart.h): each chart rendered to PNG and read back from its pixels —
// moods from marker heights, habit states from cell colours, amounts from bar lengths — equal to
// what was drawn (within a pixel); the PNG's signature and size; user text escaped (markup in a
// name stays text, and characters XML cannot hold are replaced); nothing to draw as a note, not
// an error; rendering failures as errors naming what failed, which attach_chart turns into
// "chart_error" beside an answer that stands; the scale of the expense bars.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "builtins/chart.h"
#include "capabilities/builtins/chart_reader.h"

namespace parley::capabilities {
namespace chart_test {

using builtins::ExpenseChart;
using builtins::ExpensePanel;
using builtins::HabitCell;
using builtins::HabitChart;
using builtins::HabitChartRow;
using builtins::MoodChart;
using builtins::Svg;
using chart_reader::Picture;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// Renders `svg` and decodes the PNG again, checking its signature and size on the way.
std::optional<Picture> round_trip(const std::optional<Svg>& svg) {
  if (!svg) {
    ADD_FAILURE() << "nothing was drawn";
    return std::nullopt;
  }
  auto png = builtins::render_png(*svg);
  if (!png) {
    ADD_FAILURE() << png.error().describe();
    return std::nullopt;
  }
  const auto size = chart_reader::png_header_size(*png);
  EXPECT_TRUE(size.has_value()) << "no PNG signature and IHDR";
  if (size) {
    EXPECT_EQ(*size, (std::pair{svg->width, svg->height}));
  }
  auto picture = Picture::decode(*png);
  if (picture) {
    EXPECT_EQ(picture->width(), svg->width);
    EXPECT_EQ(picture->height(), svg->height);
  }
  return picture;
}

MoodChart mood_days(const std::vector<std::optional<double>>& moods) {
  MoodChart chart{"Mood", {}};
  for (size_t i = 0; i < moods.size(); ++i) {
    chart.days.push_back({std::to_string(i + 1) + " Nov", moods[i]});
  }
  return chart;
}

TEST(Chart, XmlTextEscapesMarkupAndReplacesWhatXmlCannotHold) {
  using builtins::xml_text;
  EXPECT_EQ(xml_text("<b class=\"x\">Tom & Jerry's</b>"),
            "&lt;b class=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/b&gt;");
  EXPECT_EQ(xml_text("café\ttea\nnow"), "café\ttea\nnow");
  EXPECT_EQ(xml_text(std::string("a\x01"
                                 "b\x1f"
                                 "c",
                                 5)),
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD"
            "c");
  EXPECT_EQ(xml_text(std::string("\0", 1)), "\xEF\xBF\xBD");
  EXPECT_EQ(xml_text("bad \xff byte"), "bad \xEF\xBF\xBD byte");
  EXPECT_EQ(xml_text("\xEF\xBF\xBE\xEF\xBF\xBF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // U+FFFE, U+FFFF
}

TEST(Chart, PngHasTheSignatureAndTheSizeOfTheChart) {
  const auto svg = builtins::mood_chart_svg(mood_days({5.0}));
  ASSERT_TRUE(svg);
  EXPECT_EQ(svg->width, builtins::kChartWidth);
  EXPECT_EQ(svg->height, builtins::mood_chart::kHeight);
  auto png = builtins::render_png(*svg);
  ASSERT_TRUE(png.ok()) << png.error().describe();
  EXPECT_EQ(png->substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(chart_reader::png_header_size(*png),
            (std::pair{builtins::kChartWidth, builtins::mood_chart::kHeight}));
  auto picture = Picture::decode(*png);
  ASSERT_TRUE(picture);
  EXPECT_EQ(picture->at(2, 2), builtins::kChartBackground);
}

TEST(Chart, MoodMarkersReadBackAsTheDaysMoods) {
  // The ends of the scale, fractions, and gaps (one at the start, runs in the middle).
  const std::vector<std::optional<double>> moods{
      std::nullopt, 1.0,          10.0,         7.5, std::nullopt, std::nullopt, 2.0 / 3 + 2, 5.25,
      6.0,          9.9,          std::nullopt, 3.1, 4.0,          8.75,         1.5,         5.0,
      5.0,          std::nullopt, 2.2,          7.0, 6.6,          std::nullopt, 9.0,         4.4,
      3.3,          std::nullopt, 8.0,          7.2, 1.9,          6.45};
  ASSERT_EQ(moods.size(), 30u);
  auto picture = round_trip(builtins::mood_chart_svg(mood_days(moods)));
  ASSERT_TRUE(picture);
  for (size_t i = 0; i < moods.size(); ++i) {
    const auto read = chart_reader::read_mood(*picture, i, moods.size());
    ASSERT_EQ(read.has_value(), moods[i].has_value()) << "day " << i;
    if (read) {
      EXPECT_NEAR(*read, *moods[i], chart_reader::kMoodPerPixel) << "day " << i;
    }
  }
  // A week spreads seven days over the same width.
  const std::vector<std::optional<double>> week{3.0, std::nullopt, 8.5, 4.25, 6.0, 10.0, 1.0};
  auto weekly = round_trip(builtins::mood_chart_svg(mood_days(week)));
  ASSERT_TRUE(weekly);
  for (size_t i = 0; i < week.size(); ++i) {
    const auto read = chart_reader::read_mood(*weekly, i, week.size());
    ASSERT_EQ(read.has_value(), week[i].has_value()) << "day " << i;
    if (read) {
      EXPECT_NEAR(*read, *week[i], chart_reader::kMoodPerPixel) << "day " << i;
    }
  }
}

TEST(Chart, HabitCellsReadBackAsTheirStates) {
  HabitChart chart{"Habits", std::vector<std::string>(builtins::habit_chart::kDays), {}};
  chart.column_labels[0] = "20 Oct";
  const std::vector<HabitCell> all{HabitCell::done, HabitCell::skipped, HabitCell::missed,
                                   HabitCell::not_due, HabitCell::open};
  for (size_t r = 0; r < 4; ++r) {
    HabitChartRow row{"habit " + std::to_string(r), {}};
    for (size_t c = 0; c < static_cast<size_t>(builtins::habit_chart::kDays); ++c) {
      row.cells.push_back(all[(c * (r + 1) + r) % all.size()]);
    }
    chart.rows.push_back(std::move(row));
  }
  const auto svg = builtins::habit_chart_svg(chart);
  ASSERT_TRUE(svg);
  EXPECT_EQ(svg->height, builtins::habit_chart::height(4));
  auto picture = round_trip(svg);
  ASSERT_TRUE(picture);
  for (size_t r = 0; r < chart.rows.size(); ++r) {
    for (size_t c = 0; c < chart.rows[r].cells.size(); ++c) {
      EXPECT_EQ(chart_reader::read_cell(*picture, r, c), chart.rows[r].cells[c])
          << "row " << r << ", column " << c;
    }
  }
  // The five colours are told apart at all.
  for (size_t i = 0; i < all.size(); ++i) {
    for (size_t j = i + 1; j < all.size(); ++j) {
      EXPECT_FALSE(chart_reader::near(builtins::colour_of(all[i]), builtins::colour_of(all[j]), 40))
          << builtins::to_string(all[i]) << " and " << builtins::to_string(all[j]);
    }
  }
}

TEST(Chart, ExpenseBarsReadBackAsTheirAmountsOnePanelPerCurrency) {
  ExpenseChart chart{"Spending", {}};
  chart.panels.push_back(
      {"EUR", 2, "EUR: 123.50", {{"groceries", 8000}, {"transport", 4345}, {"coffee", 5}}});
  chart.panels.push_back({"JPY", 0, "JPY: 1000", {{"travel", 1000}}});
  chart.panels.push_back({"KWD", 3, "KWD: 1.250", {{"rent", 1000}, {"food", 250}}});
  const auto svg = builtins::expense_chart_svg(chart);
  ASSERT_TRUE(svg);
  std::vector<size_t> bars;
  for (const auto& p : chart.panels) bars.push_back(p.bars.size());
  EXPECT_EQ(svg->height,
            chart_reader::panel_top(bars, bars.size()) + builtins::expense_chart::kBottomMargin);
  auto picture = round_trip(svg);
  ASSERT_TRUE(picture);
  for (size_t p = 0; p < chart.panels.size(); ++p) {
    const auto& panel = chart.panels[p];
    int64_t largest = 0;
    for (const auto& b : panel.bars) largest = std::max(largest, b.minor);
    // Each panel on its own scale: JPY's 1000 is not drawn against EUR's 80.00.
    const auto scale = builtins::expense_scale(largest);
    const double per_pixel =
        static_cast<double>(scale.max) / builtins::expense_chart::kBarMaxLength;
    for (size_t b = 0; b < panel.bars.size(); ++b) {
      const double length =
          chart_reader::read_bar_length(*picture, chart_reader::panel_top(bars, p), b);
      EXPECT_NEAR(length * per_pixel, static_cast<double>(panel.bars[b].minor), per_pixel)
          << panel.currency << " " << panel.bars[b].label;
    }
  }
}

TEST(Chart, UserTextIsDrawnAsTextNeverAsMarkup) {
  // Were the title pasted in unescaped, this red rectangle would cover the whole picture (names
  // are cut to fit, titles are not).
  const std::string injection =
      "</text><rect x=\"0\" y=\"0\" width=\"800\" height=\"800\" fill=\"#c62828\"/><text>";
  HabitChart chart{"Habits " + injection, std::vector<std::string>(35), {}};
  for (const std::string& name :
       {std::string("</text><g>"), std::string("Tom & Jerry's <b>\"quotes\"</b>"),
        std::string("ctrl\x01\x1b char and bad \xff\xfe bytes"),
        std::string("a name far too long to fit before the grid of cells, cut short")}) {
    chart.rows.push_back({name, std::vector<HabitCell>(35, HabitCell::done)});
  }
  const auto svg = builtins::habit_chart_svg(chart);
  ASSERT_TRUE(svg);
  EXPECT_THAT(svg->text, Not(HasSubstr(injection)));
  EXPECT_THAT(svg->text, Not(HasSubstr("<b>")));
  EXPECT_THAT(svg->text, Not(HasSubstr("</text><g>")));
  EXPECT_THAT(svg->text, HasSubstr("Tom &amp; Jerry&#39;s &lt;b&gt;&quot;quotes&quot;"));
  auto picture = round_trip(svg);
  ASSERT_TRUE(picture);
  EXPECT_EQ(picture->at(picture->width() - 3, 3), builtins::kChartBackground);
  EXPECT_EQ(picture->at(3, picture->height() - 3), builtins::kChartBackground);
  for (size_t r = 0; r < chart.rows.size(); ++r) {
    EXPECT_EQ(chart_reader::read_cell(*picture, r, 0), HabitCell::done) << r;
    EXPECT_EQ(chart_reader::read_cell(*picture, r, 34), HabitCell::done) << r;
  }
  // The names stay left of the grid, however long: the gap before the first column is clear.
  for (size_t r = 0; r < chart.rows.size(); ++r) {
    const int y = builtins::habit_chart::kGridTop +
                  static_cast<int>(r) * builtins::habit_chart::kRowHeight + 8;
    EXPECT_EQ(picture->at(builtins::habit_chart::kGridLeft - 3, y), builtins::kChartBackground)
        << r;
  }

  ExpenseChart spending{"Spending <&>", {}};
  spending.panels.push_back({"EUR", 2, "EUR " + injection, {{"a<b & \"c\" 'd'", 1234}}});
  const auto spending_svg = builtins::expense_chart_svg(spending);
  ASSERT_TRUE(spending_svg);
  EXPECT_THAT(spending_svg->text, Not(HasSubstr(injection)));
  auto drawn = round_trip(spending_svg);
  ASSERT_TRUE(drawn);
  EXPECT_EQ(drawn->at(drawn->width() - 3, drawn->height() - 3), builtins::kChartBackground);
  const double length =
      chart_reader::read_bar_length(*drawn, builtins::expense_chart::kPanelsTop, 0);
  EXPECT_NEAR(length * 1500.0 / builtins::expense_chart::kBarMaxLength, 1234.0,
              1500.0 / builtins::expense_chart::kBarMaxLength);
}

TEST(Chart, NothingToDrawIsANoteNotAnError) {
  EXPECT_FALSE(builtins::mood_chart_svg(mood_days({std::nullopt, std::nullopt})));
  EXPECT_FALSE(builtins::mood_chart_svg(mood_days({})));
  EXPECT_FALSE(builtins::habit_chart_svg(HabitChart{"Habits", {}, {}}));
  EXPECT_FALSE(builtins::expense_chart_svg(ExpenseChart{"Spending", {}}));

  json answer{{"text", "No expenses in September 2026."}};
  builtins::attach_chart(answer, "expenses", "expenses-2026-09.png", json{{"currencies", {}}},
                         std::nullopt, "no expenses in September 2026");
  EXPECT_EQ(answer["text"], "No expenses in September 2026.");
  EXPECT_EQ(answer["chart"], nullptr);
  EXPECT_EQ(answer["chart_note"], "nothing to draw: no expenses in September 2026");
  EXPECT_FALSE(answer.contains("attachments"));
  EXPECT_FALSE(answer.contains("chart_error"));
}

TEST(Chart, RenderFailuresNameWhatFailedAndTheAnswerStands) {
  auto broken = builtins::render_png(Svg{"<svg xmlns=\"http://www.w3.org/2000/svg\"", 10, 10});
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.error().code, ErrorCode::internal);
  EXPECT_THAT(broken.error().message, StartsWith("librsvg could not read the SVG: "));
  for (const auto& [w, h] : {std::pair{0, 10}, std::pair{10, -1}, std::pair{10, 5000}}) {
    auto r = builtins::render_png(Svg{"<svg/>", w, h});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
    EXPECT_THAT(r.error().message, HasSubstr("is out of range (1 to 4096 a side)"));
  }

  const json numbers{{"days", {{{"day", "2026-11-23"}, {"mood", 5.0}}}}};
  json answer{{"text", "Your mood …"}};
  builtins::attach_chart(answer, "mood", "mood-30-days.png", numbers, Svg{"<svg", 800, 380},
                         "no mood logged");
  EXPECT_EQ(answer["text"], "Your mood …");
  EXPECT_EQ(answer["chart"], numbers);
  EXPECT_FALSE(answer.contains("attachments"));
  EXPECT_THAT(answer["chart_error"].get<std::string>(),
              StartsWith("mood: the chart mood-30-days.png could not be drawn: librsvg could not "
                         "read the SVG: "));

  // A chart goes next to the files an answer already carries.
  json with_file{{"text", "t"},
                 {"attachments", {{{"filename", "a.txt"}, {"media_type", "text/plain"}}}}};
  builtins::attach_chart(with_file, "mood", "mood-7-days.png", numbers,
                         builtins::mood_chart_svg(mood_days({5.0})), "no mood logged");
  ASSERT_EQ(with_file["attachments"].size(), 2u);
  EXPECT_EQ(with_file["attachments"][0]["filename"], "a.txt");
  EXPECT_EQ(with_file["attachments"][1]["filename"], "mood-7-days.png");
  EXPECT_FALSE(with_file.contains("chart_error"));
}

TEST(Chart, ExpenseScaleEndsAtTheFirstRoundTickAtOrAboveTheLargestBar) {
  using builtins::expense_scale;
  EXPECT_EQ(expense_scale(1).step, 1);
  EXPECT_EQ(expense_scale(1).max, 1);
  EXPECT_EQ(expense_scale(1234).step, 500);
  EXPECT_EQ(expense_scale(1234).max, 1500);
  EXPECT_EQ(expense_scale(8000).step, 2000);
  EXPECT_EQ(expense_scale(8000).max, 8000);
  EXPECT_EQ(expense_scale(999'999'999'999'999).max, 1'000'000'000'000'000);
  for (int64_t largest = 1; largest < 200'000; largest = largest * 3 + 7) {
    const auto s = expense_scale(largest);
    EXPECT_GE(s.max, largest);
    EXPECT_LT(s.max - s.step, largest) << largest;
    EXPECT_EQ(s.max % s.step, 0);
    EXPECT_LE(s.max / s.step, 5) << largest;
    int64_t mantissa = s.step;
    while (mantissa % 10 == 0) mantissa /= 10;
    EXPECT_TRUE(mantissa == 1 || mantissa == 2 || mantissa == 5) << s.step;
  }
}

TEST(Chart, MinorUnitsInTheCurrencysOwnDigits) {
  using builtins::format_minor_units;
  EXPECT_EQ(format_minor_units(1234, 2), "12.34");
  EXPECT_EQ(format_minor_units(5, 2), "0.05");
  EXPECT_EQ(format_minor_units(1500, 0), "1500");
  EXPECT_EQ(format_minor_units(1250, 3), "1.250");
  EXPECT_EQ(format_minor_units(-1234, 2), "-12.34");
}

}  // namespace chart_test
}  // namespace parley::capabilities
