// Personal records through the real binary: a scripted week of messages to `parley chat`, the
// fake model answering each with the tool call a model would make (journal, mood, habits,
// expenses, with the day each happened), then the trend commands a person types — whose numbers
// must be exactly what that week gave. Days are the user's (UTC here), counted back from today.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>

#include "fakes/fake_llm.h"
#include "support/run_parley.h"
#include "support/temp_dir.h"

namespace records_test {

using nlohmann::json;
using parley::fakes::FakeLlmServer;
using parley::fakes::FakeReply;
using parley::testing::parley;
using parley::testing::TempDir;
using ::testing::HasSubstr;

// Today - `back` days, UTC, as YYYY-MM-DD.
std::string day(int back) {
  const auto today = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
  const std::chrono::year_month_day d{today - std::chrono::days{back}};
  return fmt::format("{:04}-{:02}-{:02}", static_cast<int>(d.year()),
                     static_cast<unsigned>(d.month()), static_cast<unsigned>(d.day()));
}

TEST(Records, AScriptedWeekFillsTheRecordsAndTheTrendCommandsGiveItsNumbers) {
  // The week: six days back to today. Mood 5 6 7 8 6 7 9; a run every day but the third
  // before today; 12.50 EUR of food a day and 4.25 EUR of transport today.
  const std::string today = day(0);
  const int moods[7] = {5, 6, 7, 8, 6, 7, 9};
  // One message a day, each answered by the calls a model would make for it (a message that
  // arrives while another is answered joins its turn: the fake answers every message since the
  // last reply).
  std::map<std::string, std::vector<std::pair<std::string, json>>> calls;
  std::vector<std::string> lines;
  size_t expected_calls = 0;
  const auto say = [&](const std::string& text, std::vector<std::pair<std::string, json>> tools) {
    expected_calls += tools.size();
    calls[text] = std::move(tools);
    lines.push_back(text);
  };
  say("new habit: run daily, starting a week ago",
      {{"habits",
        {{"action", "add"}, {"name", "run"}, {"frequency", "daily"}, {"start", day(6)}}}});
  for (int back = 6; back >= 0; --back) {
    const int mood = moods[6 - back];
    json journal{
        {"action", "add"}, {"body", "walked by the river, day " + day(back)}, {"mood", mood}};
    json mood_log{{"action", "log"}, {"mood", mood}};
    if (back != 0) {  // today: now
      journal["when"] = day(back);
      mood_log["when"] = day(back);
    }
    std::vector<std::pair<std::string, json>> tools{{"journal", journal}, {"mood", mood_log}};
    if (back != 3) {
      tools.emplace_back("habits", json{{"action", "log"}, {"name", "run"}, {"day", day(back)}});
    }
    tools.emplace_back("expenses", json{{"action", "add"},
                                        {"amount", "12.50"},
                                        {"currency", "EUR"},
                                        {"category", "food"},
                                        {"day", day(back)}});
    say("journal for " + day(back) + ": a walk by the river, mood " + std::to_string(mood) +
            ", my habit run, expenses 12.50 EUR food",
        std::move(tools));
  }
  say("expenses: 4.25 EUR bus ticket today",
      {{"expenses",
        {{"action", "add"}, {"amount", "4.25"}, {"currency", "EUR"}, {"category", "transport"}}}});

  FakeLlmServer fake;
  fake.set_handler([&calls](const parley::fakes::RecordedRequest& r) -> std::optional<FakeReply> {
    const auto& messages = r.json["messages"];
    if (messages.back()["role"] == "tool") return FakeReply::text("Noted.");
    std::vector<parley::fakes::FakeToolCall> out;
    for (size_t i = messages.size(); i-- > 0 && messages[i]["role"] == "user";) {
      const auto it = calls.find(messages[i]["content"].get<std::string>());
      if (it == calls.end()) continue;
      for (const auto& [tool, args] : it->second) {
        out.push_back(
            {"call_" + std::to_string(i) + "_" + std::to_string(out.size()), tool, args.dump()});
      }
    }
    if (out.empty()) return FakeReply::text("(no script for: " + messages.back().dump() + ")");
    return FakeReply::tools(std::move(out));
  });

  std::string script = "{ ";
  for (const auto& l : lines) script += "printf '%s\\n' '" + l + "'; sleep 0.3; ";
  // The trend commands once every write above is answered.
  script += "sleep 3; printf '/mood week\\n/expenses week\\n/habits\\n/journal week\\n'; } | ";
  TempDir dir;
  const std::string env =
      "env -u OPENROUTER_API_KEY -u OPENAI_API_KEY -u PARLEY_LLM_API_KEY "
      "PARLEY_LLM_BASE_URL=" +
      fake.base_url() + " PARLEY_LLM_MODEL=fake-model";
  auto r = parley(dir.path(), "chat --user rosa", script + env);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  if (day(0) != today) GTEST_SKIP() << "midnight (UTC) passed during the run: the week moved";
  EXPECT_EQ(r.out.find("(no script for"), std::string::npos) << r.out;

  // Every scripted call was made once, and every one succeeded.
  size_t results = 0;
  for (const auto& req : fake.requests()) {
    const auto& messages = req.json["messages"];
    if (messages.back()["role"] != "tool") continue;
    for (size_t i = messages.size(); i-- > 0 && messages[i]["role"] == "tool";) {
      ++results;
      EXPECT_EQ(messages[i]["content"].get<std::string>().find("\"error\""), std::string::npos)
          << messages[i].dump();
    }
  }
  EXPECT_EQ(results, expected_calls) << r.out;

  // /mood week: each day's mood, the sparkline, the week's average 48 / 7 = 6.9.
  for (int back = 6; back >= 0; --back) {
    EXPECT_THAT(r.out, HasSubstr(fmt::format(" {}.0 (1 log)", moods[6 - back]))) << back;
  }
  EXPECT_THAT(r.out, HasSubstr("mood 6.9"));
  EXPECT_THAT(r.out, HasSubstr("logged on 7 of 7 days"));
  // /expenses week: 7 × 12.50 + 4.25, per category, in EUR only.
  EXPECT_THAT(r.out, HasSubstr("91.75 EUR in 8 expenses"));
  EXPECT_THAT(r.out, HasSubstr("food 87.50 EUR (95%)"));
  EXPECT_THAT(r.out, HasSubstr("transport 4.25 EUR (5%)"));
  // /habits: missed three days ago → the current streak is 3 (two days ago to today), the
  // longest 3 as well (six to four days ago).
  EXPECT_THAT(r.out, HasSubstr("run"));
  EXPECT_THAT(r.out, HasSubstr("streak 3 days, best 3"));
  // /journal week: the entries are there.
  EXPECT_THAT(r.out, HasSubstr("7 journal entries"));
}

}  // namespace records_test
