// The /reports page: escaping of untrusted names, an empty page, reports_json's figures — and the
// page rendered by headless Chromium, every number read back from the DOM equal to
// reports_json's (the issue requires a real browser; without one the test fails, it never skips).
#include "parley/bot/money/reports/reports_page.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <set>

#include "support/run_parley.h"
#include "support/temp_dir.h"

namespace parley::bot::money {
namespace reports_page_test {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kHostileModel = "<script>alert('m')</script>&co/\"model\"";
constexpr const char* kHostileUser = "\"><img src=x onerror=alert(1)> Zoë & 'Bob'";

ReportsPageData sample() {
  ReportsPageData d;
  d.generated_at_ms = 1'709'985'600'000;  // 2024-03-09T12:00:00Z
  d.zone = "America/New_York";
  d.period = "--since 7d";
  d.cost_series = {
      {"2024-03-07", "openai/gpt-4o-mini", 1'234'500},
      {"2024-03-07", kHostileModel, 20'000'000},
      {"2024-03-08", "openai/gpt-4o-mini", 3'000},
      {"2024-03-08", "openai/gpt-4o-mini", 7},  // a repeated pair adds up
      {"2024-03-09", "anthropic/claude-3.5-sonnet", 987'654'321},
      {"2024-03-09", kHostileModel, 0},
  };
  d.tokens = {{"2024-03-07", 12'000, 800},
              {"2024-03-08", 3'500, 120},
              {"2024-03-09", 90'000, 4'000},
              {"2024-03-09", 1, 2}};
  d.top_users = {{kHostileUser, 42, 987'000'000, 17},
                 {"alice", 7, 21'000'000, 3},
                 {"(no user)", std::nullopt, 3'007, 1}};
  d.budgets = {{"global daily", 987'654'321, 5'000'000'000},
               {"global monthly", 1'008'892'828, 1'000'000'000},
               {"user alice daily", 850'000'000, 1'000'000'000},
               {"no cap", 5, 0}};
  d.alerts = {{3, 1'709'900'000'000, "unknown_price", "warning", "no price for <model> & co"},
              {9, 1'709'980'000'000, "budget_hard", "critical", "global daily cap \"reached\""}};
  d.totals = {21, 2, 105'501, 4'922, 1'008'892'828, 1'000'000'000, 9'000'000, 1};
  return d;
}

TEST(ReportsPage, UntrustedNamesAreEscapedEverywhere) {
  const std::string page = render_reports_page(sample());
  EXPECT_THAT(page, Not(HasSubstr("<script")));
  EXPECT_THAT(page, Not(HasSubstr("<img")));
  EXPECT_THAT(
      page, HasSubstr("&lt;script&gt;alert(&#39;m&#39;)&lt;/script&gt;&amp;co/&quot;model&quot;"));
  EXPECT_THAT(page,
              HasSubstr("&quot;&gt;&lt;img src=x onerror=alert(1)&gt; Zoë &amp; &#39;Bob&#39;"));
  EXPECT_THAT(page, HasSubstr("no price for &lt;model&gt; &amp; co"));
}

TEST(ReportsPage, IsSelfContained) {
  const std::string page = render_reports_page(sample());
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0U);
  // (The hostile names hold "src=x" as escaped text, never as an attribute.)
  for (const char* external :
       {"<script", " src=\"", " href=\"", "http://", "https://", "@import", "url("}) {
    EXPECT_THAT(page, Not(HasSubstr(external))) << external;
  }
  EXPECT_THAT(page, HasSubstr("<svg"));
  EXPECT_THAT(page, HasSubstr("<style>"));
}

TEST(ReportsPage, EmptyDataRenders) {
  const ReportsPageData empty;
  const std::string page = render_reports_page(empty);
  EXPECT_THAT(page, HasSubstr("</html>"));
  EXPECT_THAT(page, HasSubstr("No calls in this period."));
  EXPECT_THAT(page, HasSubstr("No budgets configured."));
  EXPECT_THAT(page, HasSubstr("No open alerts."));
  const json j = reports_json(empty);
  EXPECT_TRUE(j["days"].empty());
  EXPECT_TRUE(j["cost_by_day"].empty());
  EXPECT_EQ(j["totals"]["cost"]["nanousd"], 0);
  EXPECT_EQ(j["totals"]["cost"]["usd"], "0.000000000");
}

TEST(ReportsJson, OrdersModelsByCostAndAddsRepeatedPairs) {
  const json j = reports_json(sample());
  ASSERT_EQ(j["days"], json({"2024-03-07", "2024-03-08", "2024-03-09"}));
  ASSERT_EQ(j["models"].size(), 3U);
  EXPECT_EQ(j["models"][0]["model"], "anthropic/claude-3.5-sonnet");
  EXPECT_EQ(j["models"][1]["model"], kHostileModel);
  EXPECT_EQ(j["models"][2]["model"], "openai/gpt-4o-mini");
  EXPECT_EQ(j["models"][2]["cost"]["nanousd"], 1'237'507);
  EXPECT_EQ(j["cost_by_day"][1]["models"][0]["cost"]["nanousd"], 3'007);
  EXPECT_EQ(j["cost_by_day"][0]["total"]["nanousd"], 21'234'500);
  EXPECT_EQ(j["cost_by_day"][0]["total"]["usd"], "0.021234500");
  EXPECT_EQ(j["tokens_by_day"][2]["prompt_tokens"], 90'001);
  EXPECT_EQ(j["budgets"][0]["percent"], 19);   // 987654321 / 5e9 = 19.75 % → 19
  EXPECT_EQ(j["budgets"][1]["percent"], 100);  // 100.88 % → 100
  EXPECT_TRUE(j["budgets"][3]["percent"].is_null());
  EXPECT_TRUE(j["budgets"][3]["cap"].is_null());
  EXPECT_TRUE(j["top_users"][2]["user_id"].is_null());
}

// ---- the page in a real browser ----

struct DomElement {
  std::string tag;
  std::map<std::string, std::string> attrs;
  std::string text;  // the text up to the next tag, entities decoded
};

std::string decode_entities(const std::string& s) {
  static const std::map<std::string, std::string> kNamed = {
      {"amp", "&"}, {"lt", "<"}, {"gt", ">"}, {"quot", "\""}, {"#39", "'"}, {"nbsp", "\xC2\xA0"}};
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '&') {
      const size_t semi = s.find(';', i);
      if (semi != std::string::npos) {
        const auto it = kNamed.find(s.substr(i + 1, semi - i - 1));
        if (it != kNamed.end()) {
          out += it->second;
          i = semi;
          continue;
        }
      }
    }
    out += s[i];
  }
  return out;
}

// Elements with a data-json attribute, from Chromium's serialisation of the DOM (attributes
// always double-quoted, text and attribute values entity-escaped).
std::vector<DomElement> data_elements(const std::string& dom) {
  std::vector<DomElement> out;
  size_t pos = 0;
  while ((pos = dom.find('<', pos)) != std::string::npos) {
    const size_t end = dom.find('>', pos);
    if (end == std::string::npos) break;
    const std::string tag = dom.substr(pos + 1, end - pos - 1);
    pos = end + 1;
    if (tag.empty() || tag[0] == '/' || tag[0] == '!') continue;
    if (tag.find("data-json=") == std::string::npos) continue;
    DomElement e;
    size_t i = tag.find_first_of(" /");
    e.tag = tag.substr(0, i);
    while (i != std::string::npos && i < tag.size()) {
      const size_t name_start = tag.find_first_not_of(" /", i);
      if (name_start == std::string::npos) break;
      const size_t eq = tag.find('=', name_start);
      if (eq == std::string::npos || tag[eq + 1] != '"') break;
      const size_t close = tag.find('"', eq + 2);
      e.attrs[tag.substr(name_start, eq - name_start)] =
          decode_entities(tag.substr(eq + 2, close - eq - 2));
      i = close + 1;
    }
    e.text = decode_entities(dom.substr(pos, dom.find('<', pos) - pos));
    out.push_back(std::move(e));
  }
  return out;
}

void integer_pointers(const json& j, const std::string& at, std::set<std::string>& out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) integer_pointers(v, at + "/" + k, out);
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) integer_pointers(j[i], at + "/" + std::to_string(i), out);
  } else if (j.is_number_integer()) {
    out.insert(at);
  }
}

// Runs headless Chromium on `page` and returns the DOM it built.
std::string chromium_dom(const testing::TempDir& dir, const std::string& page) {
  testing::write_file(dir / "reports.html", page);
  const std::string home = (dir / "home").string();
  const auto r = testing::shell(
      dir.path(),
      "command -v chromium >/dev/null || { echo 'chromium is not installed: run scripts/test "
      "(it installs the test-only Debian package chromium) or apt-get install chromium' >&2; exit "
      "127; }\n"
      "mkdir -p " +
          testing::quote(home) + " && HOME=" + testing::quote(home) +
          " timeout 60 chromium --headless --no-sandbox --disable-gpu --no-first-run "
          "--disable-extensions --user-data-dir=" +
          testing::quote(home + "/profile") + " --dump-dom " +
          testing::quote("file://" + (dir / "reports.html").string()));
  if (r.code == 127) {
    ADD_FAILURE() << r.err;
  } else if (r.code == 124) {
    ADD_FAILURE() << "chromium did not finish within 60 s\n" << r.err;
  } else if (r.code != 0) {
    ADD_FAILURE() << "chromium failed with exit code " << r.code << "\n" << r.err;
  }
  return r.out;
}

TEST(ReportsPageInChromium, EveryNumberReadBackFromTheDomEqualsReportsJson) {
  testing::TempDir dir;
  const ReportsPageData data = sample();
  const json j = reports_json(data);
  const std::string dom = chromium_dom(dir, render_reports_page(data));
  ASSERT_FALSE(dom.empty());
  // The browser built the page we meant: no element from a name, every section there.
  EXPECT_THAT(dom, Not(HasSubstr("<script")));
  EXPECT_THAT(dom, Not(HasSubstr("<img")));
  for (const char* id : {"totals", "budgets", "spend", "tokens", "users", "alerts"}) {
    EXPECT_THAT(dom, HasSubstr(std::string("<section id=\"") + id + "\"")) << id;
  }

  const auto elements = data_elements(dom);
  std::set<std::string> numbers_in_dom;
  size_t strings = 0;
  size_t spend_bars = 0;
  for (const auto& e : elements) {
    const std::string& ptr = e.attrs.at("data-json");
    const json::json_pointer p(ptr);
    ASSERT_TRUE(j.contains(p)) << ptr;
    const auto value = e.attrs.find("data-value");
    if (value != e.attrs.end()) {
      ASSERT_TRUE(j.at(p).is_number_integer()) << ptr;
      EXPECT_EQ(value->second, std::to_string(j.at(p).get<int64_t>())) << ptr;
      numbers_in_dom.insert(ptr);
      if (e.tag == "rect" && ptr.rfind("/cost_by_day/", 0) == 0) ++spend_bars;
    } else {
      ASSERT_TRUE(j.at(p).is_string()) << ptr;
      EXPECT_EQ(e.text, j.at(p).get<std::string>()) << ptr;
      ++strings;
    }
  }
  // Every integer of reports_json is on the page.
  std::set<std::string> numbers_in_json;
  integer_pointers(j, "", numbers_in_json);
  for (const auto& ptr : numbers_in_json)
    EXPECT_TRUE(numbers_in_dom.count(ptr)) << ptr << " not in the DOM";
  EXPECT_EQ(numbers_in_dom.size(), numbers_in_json.size());
  EXPECT_EQ(spend_bars, 5U);  // one segment per (day, model) present
  EXPECT_GT(strings, 10U);

  // The hostile names came back as text, exactly.
  bool model_seen = false;
  bool user_seen = false;
  for (const auto& e : elements) {
    model_seen = model_seen || e.text == kHostileModel;
    user_seen = user_seen || e.text == kHostileUser;
  }
  EXPECT_TRUE(model_seen);
  EXPECT_TRUE(user_seen);
}

TEST(ReportsPageInChromium, EmptyPageRenders) {
  testing::TempDir dir;
  const std::string dom = chromium_dom(dir, render_reports_page(ReportsPageData{}));
  EXPECT_THAT(dom, HasSubstr("No calls in this period."));
  const json j = reports_json(ReportsPageData{});
  for (const auto& e : data_elements(dom)) {
    const json::json_pointer p(e.attrs.at("data-json"));
    ASSERT_TRUE(j.contains(p)) << e.attrs.at("data-json");
    if (e.attrs.count("data-value") != 0) {
      EXPECT_EQ(e.attrs.at("data-value"), std::to_string(j.at(p).get<int64_t>()));
    }
  }
}

}  // namespace reports_page_test
}  // namespace parley::bot::money
