// events: add (a time in the caller's zone, or a whole day), get, upcoming, list (a day, a
// range), update, remove with their answers and what is stored; DST (a time on the night the
// clocks change, an all-day event on a 23- and a 25-hour day); the iCalendar export (the
// calendar's frame, one VEVENT per event with its zone's local time or its DATE, a VTIMEZONE
// from the tz database, CRLF, folding at 75 octets around multi-byte characters, TEXT escaping,
// PRIORITY, stable UIDs); every error naming its field with nothing written; per-user isolation
// by every id, in lists and in the export; upcoming_events() for the bot's prompt; the /events
// command forms.
#include "parley/capabilities/events.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <regex>
#include <sstream>

#include "capabilities/builtins/user_store_fixture.h"
#include "parley/base/text.h"

namespace parley::capabilities {
namespace events_test {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

int64_t utc_ms(std::chrono::year_month_day day, int h, int m) {
  const auto t = std::chrono::sys_days{day} + std::chrono::hours{h} + std::chrono::minutes{m};
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 24 * kHour;

// The physical lines of an iCalendar text (each must end in CRLF).
std::vector<std::string> physical_lines(const std::string& ics) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t end = ics.find("\r\n"); end != std::string::npos; end = ics.find("\r\n", start)) {
    lines.push_back(ics.substr(start, end - start));
    start = end + 2;
  }
  EXPECT_EQ(start, ics.size()) << "the text ends in CRLF";
  return lines;
}

// The content lines, unfolded (RFC 5545 3.1).
std::vector<std::string> content_lines(const std::string& ics) {
  std::vector<std::string> lines;
  for (auto& l : physical_lines(ics)) {
    if (!l.empty() && l.front() == ' ') {
      EXPECT_FALSE(lines.empty());
      if (!lines.empty()) lines.back() += l.substr(1);
    } else {
      lines.push_back(std::move(l));
    }
  }
  return lines;
}

// The content lines of the VEVENT whose SUMMARY is `summary`.
std::vector<std::string> vevent(const std::string& ics, const std::string& summary) {
  std::vector<std::string> current;
  for (const auto& l : content_lines(ics)) {
    if (l == "BEGIN:VEVENT") current.clear();
    current.push_back(l);
    if (l == "END:VEVENT" &&
        std::find(current.begin(), current.end(), "SUMMARY:" + summary) != current.end()) {
      return current;
    }
  }
  return {};
}

class EventsTest : public UserStoreFixture {
 protected:
  // Invokes events as `who`, a caller in `zone`.
  Result<json> try_events(const UserScope& who, const json& args,
                          const std::string& zone = "Europe/Berlin") {
    InvokeContext ctx;
    ctx.caller.user_id = who.user_id();
    ctx.caller.time_zone = zone;
    ctx.data = &who;
    ctx.services = &services_;
    return registry_.find("events")->invoke(ctx, args);
  }
  json events(const UserScope& who, const json& args, const std::string& zone = "Europe/Berlin") {
    auto r = try_events(who, args, zone);
    EXPECT_TRUE(r.ok()) << args.dump() << ": " << (r.ok() ? "" : r.error().describe());
    return r.ok() ? *r : json();
  }
  json add(const UserScope& who, const json& fields, const std::string& zone = "Europe/Berlin") {
    json args = fields;
    args["action"] = "add";
    return events(who, args, zone)["event"];
  }
  int64_t add_id(const UserScope& who, const json& fields,
                 const std::string& zone = "Europe/Berlin") {
    return add(who, fields, zone)["id"].get<int64_t>();
  }
  std::string export_ics(const UserScope& who, const std::string& zone = "Europe/Berlin") {
    auto r = events(who, {{"action", "export"}}, zone);
    return r["attachments"][0]["text"].get<std::string>();
  }
  static std::string id_text(int64_t id) { return "#" + std::to_string(id); }
};

// The fixture's clock: Monday 2026-11-23 14:04:05 UTC, 15:04:05 in Berlin (CET, UTC+1).
TEST_F(EventsTest, AddGetUpcomingInTheCallersZone) {
  auto added = events(*alice_, {{"action", "add"},
                                {"title", " Dentist "},
                                {"when", "tomorrow 09:00"},
                                {"duration_minutes", 45},
                                {"place", "Main St 5"},
                                {"people", {"Dr. Weiss"}},
                                {"importance", 4},
                                {"notes", "bring the X-rays"}});
  const json& e = added["event"];
  const int64_t dentist = e["id"].get<int64_t>();
  EXPECT_EQ(added["text"], "Added " + id_text(dentist) +
                               " Tue 24 Nov 2026 09:00–09:45 — Dentist @ Main St 5 with Dr. Weiss "
                               "[importance 4/5]");
  EXPECT_EQ(e["title"], "Dentist");
  EXPECT_EQ(e["starts_at"], "2026-11-24T08:00:00Z");
  EXPECT_EQ(e["start_local"], "2026-11-24T09:00:00+01:00");
  EXPECT_EQ(e["ends_at"], "2026-11-24T08:45:00Z");
  EXPECT_EQ(e["zone"], "Europe/Berlin");
  EXPECT_EQ(e["all_day"], false);
  EXPECT_EQ(e["duration_minutes"], 45);
  EXPECT_EQ(e["people"], (json{"Dr. Weiss"}));
  EXPECT_EQ(e["importance"], 4);
  EXPECT_EQ(e["notes"], "bring the X-rays");
  EXPECT_TRUE(std::regex_match(e["uid"].get<std::string>(), std::regex("[0-9a-f]{32}@parley")))
      << e["uid"];

  auto conf = add(*alice_,
                  {{"title", "Conference"}, {"day", "2026-11-27"}, {"duration_minutes", 2 * 1440}});
  EXPECT_EQ(conf["all_day"], true);
  EXPECT_EQ(conf["day"], "2026-11-27");
  EXPECT_EQ(conf["last_day"], "2026-11-28");
  EXPECT_EQ(conf["starts_at"], "2026-11-26T23:00:00Z");
  EXPECT_EQ(conf["ends_at"], "2026-11-28T23:00:00Z");
  EXPECT_EQ(conf["importance"], 3);
  const int64_t call = add_id(*alice_, {{"title", "Call"}, {"when", "in 2 hours"}});
  const int64_t old = add_id(*alice_, {{"title", "Old"}, {"when", "today 09:00"}});
  const int64_t far = add_id(*alice_, {{"title", "Far"}, {"when", "in 20 days"}});

  auto up = events(*alice_, {{"action", "upcoming"}});
  ASSERT_EQ(up["events"].size(), 3u);
  EXPECT_EQ(up["events"][0]["id"], call);
  EXPECT_EQ(up["events"][1]["id"], dentist);
  EXPECT_EQ(up["events"][2]["id"], conf["id"]);
  EXPECT_EQ(up["text"], "Your events in the next 14 days (Europe/Berlin time):\n" + id_text(call) +
                            " Mon 23 Nov 2026 17:04 — Call\n" + id_text(dentist) +
                            " Tue 24 Nov 2026 09:00–09:45 — Dentist @ Main St 5 with Dr. Weiss "
                            "[importance 4/5]\n" +
                            id_text(conf["id"].get<int64_t>()) +
                            " Fri 27 Nov 2026 – Sat 28 Nov 2026, all day — Conference");
  auto longer = events(*alice_, {{"action", "upcoming"}, {"days", 30}});
  ASSERT_EQ(longer["events"].size(), 4u);
  EXPECT_EQ(longer["events"][3]["id"], far);

  // Shown in the caller's zone, with the event's own when it differs.
  auto ny = events(*alice_, {{"action", "upcoming"}}, "America/New_York");
  EXPECT_THAT(ny["text"].get<std::string>(),
              HasSubstr("Tue 24 Nov 2026 03:00–03:45 (09:00 Europe/Berlin) — Dentist"));

  auto got = events(*alice_, {{"action", "get"}, {"id", dentist}});
  EXPECT_EQ(got["event"]["id"], dentist);
  EXPECT_THAT(got["text"].get<std::string>(), HasSubstr("\n  bring the X-rays"));
  auto past = events(*alice_, {{"action", "get"}, {"id", old}});
  EXPECT_EQ(past["event"]["starts_at"], "2026-11-23T08:00:00Z");
}

TEST_F(EventsTest, ListADayOrARange) {
  const int64_t a = add_id(
      *alice_,
      {{"title", "A"}, {"when", "2026-11-25 23:30"}, {"duration_minutes", 60}});  // into the 26th
  const int64_t b = add_id(*alice_, {{"title", "B"}, {"when", "2026-11-26 12:00"}});
  const int64_t c = add_id(*alice_, {{"title", "C"}, {"day", "2026-11-27"}});
  add_id(*alice_, {{"title", "D"}, {"when", "2026-11-28 00:00"}});

  auto day = events(*alice_, {{"action", "list"}, {"day", "2026-11-26"}});
  ASSERT_EQ(day["events"].size(), 2u);
  EXPECT_EQ(day["events"][0]["id"], a);  // still running at midnight
  EXPECT_EQ(day["events"][1]["id"], b);
  EXPECT_THAT(day["text"].get<std::string>(),
              HasSubstr("Your events, Thu 26 Nov 2026 (Europe/Berlin time):\n"));
  EXPECT_EQ(day["from"], "2026-11-26");

  auto range = events(*alice_, {{"action", "list"}, {"from", "2026-11-26"}, {"to", "2026-11-27"}});
  ASSERT_EQ(range["events"].size(), 3u);
  EXPECT_EQ(range["events"][2]["id"], c);
  EXPECT_EQ(events(*alice_, {{"action", "list"}, {"day", "friday"}})["events"].size(), 1u)
      << "a weekday looks ahead: Friday the 27th";
  auto today = events(*alice_, {{"action", "list"}});
  EXPECT_TRUE(today["events"].empty());
  EXPECT_EQ(today["text"], "Nothing on your calendar for Mon 23 Nov 2026.");
}

TEST_F(EventsTest, DaylightSavingChanges) {
  clock_.set_ms(utc_ms(std::chrono::year{2026} / 3 / 20, 12, 0));
  // On the night of 2026-03-29 Berlin moves from CET (+1) to CEST (+2).
  auto spring =
      add(*alice_, {{"title", "Brunch"}, {"when", "2026-03-29 09:00"}, {"duration_minutes", 90}});
  EXPECT_EQ(spring["starts_at"], "2026-03-29T07:00:00Z");
  EXPECT_EQ(spring["start_local"], "2026-03-29T09:00:00+02:00");
  auto before = add(*alice_, {{"title", "Late"}, {"when", "2026-03-28 09:00"}});
  EXPECT_EQ(before["starts_at"], "2026-03-28T08:00:00Z");
  auto short_day = add(*alice_, {{"title", "Short day"}, {"day", "2026-03-29"}});
  EXPECT_EQ(short_day["starts_at"], "2026-03-28T23:00:00Z");
  EXPECT_EQ(short_day["ends_at"], "2026-03-29T22:00:00Z");  // 23 hours
  // On the night of 2026-10-25 it goes back to CET: a 25-hour day.
  auto long_day = add(*alice_, {{"title", "Long day"}, {"day", "2026-10-25"}});
  EXPECT_EQ(long_day["starts_at"], "2026-10-24T22:00:00Z");
  EXPECT_EQ(long_day["ends_at"], "2026-10-25T23:00:00Z");
  auto twice = add(*alice_, {{"title", "Twice"}, {"when", "2026-10-25 02:30"}});
  EXPECT_EQ(twice["starts_at"], "2026-10-25T00:30:00Z");  // the first 02:30

  const std::string ics = export_ics(*alice_);
  const auto brunch = vevent(ics, "Brunch");
  EXPECT_THAT(brunch, ::testing::Contains("DTSTART;TZID=Europe/Berlin:20260329T090000"));
  EXPECT_THAT(brunch, ::testing::Contains("DTEND;TZID=Europe/Berlin:20260329T103000"));
  EXPECT_THAT(vevent(ics, "Late"),
              ::testing::Contains("DTSTART;TZID=Europe/Berlin:20260328T090000"));
  EXPECT_THAT(vevent(ics, "Short day"), ::testing::Contains("DTSTART;VALUE=DATE:20260329"));
  EXPECT_THAT(vevent(ics, "Short day"), ::testing::Contains("DTEND;VALUE=DATE:20260330"));
  EXPECT_THAT(vevent(ics, "Long day"), ::testing::Contains("DTSTART;VALUE=DATE:20261025"));
  EXPECT_THAT(vevent(ics, "Twice"),
              ::testing::Contains("DTSTART;TZID=Europe/Berlin:20261025T023000"));

  // The zone's observances for 2026, from the tz database: CET since October 2025, CEST from
  // 02:00 CET on 29 March, CET again from 03:00 CEST on 25 October.
  const auto lines = content_lines(ics);
  std::ostringstream tz;
  bool in = false;
  for (const auto& l : lines) {
    if (l == "BEGIN:VTIMEZONE") in = true;
    if (in) tz << l << "\n";
    if (l == "END:VTIMEZONE") in = false;
  }
  EXPECT_EQ(tz.str(),
            "BEGIN:VTIMEZONE\nTZID:Europe/Berlin\n"
            "BEGIN:STANDARD\nDTSTART:20251026T030000\nTZOFFSETFROM:+0200\nTZOFFSETTO:+0100\n"
            "TZNAME:CET\nEND:STANDARD\n"
            "BEGIN:DAYLIGHT\nDTSTART:20260329T020000\nTZOFFSETFROM:+0100\nTZOFFSETTO:+0200\n"
            "TZNAME:CEST\nEND:DAYLIGHT\n"
            "BEGIN:STANDARD\nDTSTART:20261025T030000\nTZOFFSETFROM:+0200\nTZOFFSETTO:+0100\n"
            "TZNAME:CET\nEND:STANDARD\n"
            "END:VTIMEZONE\n");

  // An all-day event is on until its (25-hour) day ends in its zone.
  clock_.set_ms(utc_ms(std::chrono::year{2026} / 10 / 25, 22, 30));  // 23:30 CET
  auto up = events(*alice_, {{"action", "upcoming"}});
  ASSERT_EQ(up["events"].size(), 1u);
  EXPECT_EQ(up["events"][0]["title"], "Long day");
  clock_.set_ms(utc_ms(std::chrono::year{2026} / 10 / 25, 23, 0));
  EXPECT_TRUE(events(*alice_, {{"action", "upcoming"}})["events"].empty());
}

TEST_F(EventsTest, TheCalendarFile) {
  const std::string title = std::string(66, 'a') + "é and more: ½ € 😀 " + std::string(60, 'b');
  const int64_t long_one = add_id(*alice_, {{"title", title},
                                            {"when", "2026-12-01 18:00"},
                                            {"duration_minutes", 120},
                                            {"place", "Café Zentral; Vienna, 1st floor"},
                                            {"people", {"Anna", "Ben"}},
                                            {"notes", "a;b,c\\d\nline 2\r\nline 3"},
                                            {"importance", 5}});
  add_id(*alice_, {{"title", "Holiday"},
                   {"day", "2026-12-24"},
                   {"duration_minutes", 3 * 1440},
                   {"importance", 1}});
  add_id(*alice_, {{"title", "Quick"}, {"when", "2026-12-02 08:00"}});

  auto r = events(*alice_, {{"action", "export"}});
  EXPECT_EQ(r["count"], 3);
  EXPECT_EQ(r["text"], "Your calendar file events.ics holds 3 events.");
  ASSERT_EQ(r["attachments"].size(), 1u);
  const json& file = r["attachments"][0];
  EXPECT_EQ(file.size(), 3u);
  EXPECT_EQ(file["filename"], "events.ics");
  EXPECT_EQ(file["media_type"], "text/calendar");
  const std::string ics = file["text"].get<std::string>();

  // CRLF only; no physical line longer than 75 octets, none cut inside a character.
  for (size_t i = 0; i < ics.size(); ++i) {
    if (ics[i] == '\n') {
      ASSERT_GT(i, 0u);
      EXPECT_EQ(ics[i - 1], '\r') << "a bare LF at " << i;
    }
  }
  const auto physical = physical_lines(ics);
  for (const auto& l : physical) {
    EXPECT_LE(l.size(), 75u) << l;
    EXPECT_FALSE(invalid_utf8_at(l).has_value()) << "cut inside a character: " << l;
  }
  // The title's é straddles octets 75 and 76 of its line: the fold comes before it.
  const auto first = std::find(physical.begin(), physical.end(), "SUMMARY:" + std::string(66, 'a'));
  ASSERT_NE(first, physical.end());
  ASSERT_NE(first + 1, physical.end());
  EXPECT_TRUE((first + 1)->starts_with(" é and more: ½ € 😀 bbb")) << *(first + 1);

  const auto lines = content_lines(ics);
  ASSERT_GE(lines.size(), 5u);
  EXPECT_EQ(lines[0], "BEGIN:VCALENDAR");
  EXPECT_EQ(lines[1], "VERSION:2.0");
  EXPECT_EQ(lines[2], "PRODID:-//parley//events//EN");
  EXPECT_EQ(lines[3], "CALSCALE:GREGORIAN");
  EXPECT_EQ(lines.back(), "END:VCALENDAR");
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "BEGIN:VEVENT"), 3);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "BEGIN:VTIMEZONE"), 1);

  const auto big = vevent(ics, title);
  ASSERT_FALSE(big.empty());
  const auto uid = events(*alice_, {{"action", "get"}, {"id", long_one}})["event"]["uid"];
  for (const std::string& expected : {
           "UID:" + uid.get<std::string>(),
           std::string("DTSTAMP:20261123T140405Z"),
           std::string("DTSTART;TZID=Europe/Berlin:20261201T180000"),
           std::string("DTEND;TZID=Europe/Berlin:20261201T200000"),
           std::string("LOCATION:Café Zentral\\; Vienna\\, 1st floor"),
           std::string("DESCRIPTION:With: Anna\\, Ben\\na\\;b\\,c\\\\d\\nline 2\\nline 3"),
           std::string("PRIORITY:1"),
           std::string("CREATED:20261123T140405Z"),
       }) {
    EXPECT_THAT(big, ::testing::Contains(expected));
  }
  const auto holiday = vevent(ics, "Holiday");
  EXPECT_THAT(holiday, ::testing::Contains("DTSTART;VALUE=DATE:20261224"));
  EXPECT_THAT(holiday, ::testing::Contains("DTEND;VALUE=DATE:20261227"));
  EXPECT_THAT(holiday, ::testing::Contains("PRIORITY:9"));
  const auto quick = vevent(ics, "Quick");
  EXPECT_THAT(quick, ::testing::Contains("PRIORITY:5"));
  EXPECT_EQ(std::count_if(quick.begin(), quick.end(),
                          [](const std::string& l) { return l.starts_with("DTEND"); }),
            0)
      << "no duration: no end";
  EXPECT_EQ(std::count_if(quick.begin(), quick.end(),
                          [](const std::string& l) { return l.starts_with("DESCRIPTION"); }),
            0);

  // The UID stays across exports; DTSTAMP is the export's time.
  clock_.advance_ms(kHour);
  const std::string again = export_ics(*alice_);
  EXPECT_THAT(vevent(again, title), ::testing::Contains("UID:" + uid.get<std::string>()));
  EXPECT_THAT(vevent(again, title), ::testing::Contains("DTSTAMP:20261123T150405Z"));
}

TEST_F(EventsTest, TheCalendarFileIsValidUtf8WhateverWasStored) {
  add_id(*alice_, {{"title", std::string(100, '\xff') + "\x01"
                                                        "end"},
                   {"when", "tomorrow 10:00"}});
  const std::string ics = export_ics(*alice_);
  EXPECT_FALSE(invalid_utf8_at(ics).has_value());
  for (const auto& l : physical_lines(ics)) EXPECT_LE(l.size(), 75u) << l;
  const auto lines = content_lines(ics);
  std::string expected = "SUMMARY:";
  for (int i = 0; i < 100; ++i) expected += "\uFFFD";
  EXPECT_THAT(lines, ::testing::Contains(expected + "end")) << "a control character is dropped";
}

TEST_F(EventsTest, EventsInUtcAndOtherZones) {
  add_id(*alice_, {{"title", "Standup"}, {"when", "2026-12-01 09:00"}}, "UTC");
  add_id(*alice_, {{"title", "Town hall"}, {"when", "2026-12-01 09:00"}}, "America/New_York");
  add_id(*alice_, {{"title", "Tokyo call"}, {"when", "2026-12-01 09:00"}}, "Asia/Tokyo");
  const std::string ics = export_ics(*alice_);
  EXPECT_THAT(vevent(ics, "Standup"), ::testing::Contains("DTSTART:20261201T090000Z"));
  EXPECT_THAT(vevent(ics, "Town hall"),
              ::testing::Contains("DTSTART;TZID=America/New_York:20261201T090000"));
  EXPECT_THAT(vevent(ics, "Tokyo call"),
              ::testing::Contains("DTSTART;TZID=Asia/Tokyo:20261201T090000"));
  const auto lines = content_lines(ics);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "BEGIN:VTIMEZONE"), 2) << "none for UTC";
  EXPECT_THAT(lines, ::testing::Contains("TZID:America/New_York"));
  EXPECT_THAT(lines, ::testing::Contains("TZID:Asia/Tokyo"));
  EXPECT_THAT(lines, ::testing::Contains("TZNAME:JST"));
  EXPECT_THAT(lines, ::testing::Contains("TZOFFSETTO:+0900"));
  EXPECT_THAT(lines, ::testing::Contains("TZNAME:EST"));
  EXPECT_THAT(lines, ::testing::Contains("TZOFFSETTO:-0500"));
}

TEST_F(EventsTest, Update) {
  const int64_t id = add_id(*alice_, {{"title", "Lunch"},
                                      {"when", "tomorrow 12:00"},
                                      {"duration_minutes", 60},
                                      {"place", "Canteen"}});
  auto moved = events(*alice_, {{"action", "update"},
                                {"id", id},
                                {"when", "tomorrow 13:00"},
                                {"people", {"Cem"}},
                                {"importance", 5}});
  EXPECT_EQ(moved["event"]["starts_at"], "2026-11-24T12:00:00Z");
  EXPECT_EQ(moved["event"]["duration_minutes"], 60);
  EXPECT_EQ(moved["event"]["place"], "Canteen");
  EXPECT_EQ(moved["event"]["people"], (json{"Cem"}));
  EXPECT_THAT(moved["text"].get<std::string>(),
              HasSubstr("Updated " + id_text(id) + " Tue 24 Nov 2026 13:00–14:00 — Lunch"));
  // A whole day now: the timed duration does not carry over.
  auto all_day = events(*alice_, {{"action", "update"},
                                  {"id", id},
                                  {"day", "2026-11-25"},
                                  {"title", "Team day"},
                                  {"place", ""}});
  EXPECT_EQ(all_day["event"]["all_day"], true);
  EXPECT_EQ(all_day["event"]["day"], "2026-11-25");
  EXPECT_EQ(all_day["event"]["duration_minutes"], nullptr);
  EXPECT_EQ(all_day["event"]["place"], "");
  EXPECT_EQ(all_day["event"]["title"], "Team day");
  auto bad = try_events(*alice_, {{"action", "update"}, {"id", id}, {"duration_minutes", 90}});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message, HasSubstr("events: duration_minutes: an all-day event lasts "
                                             "whole days"));
  auto kept = events(*alice_, {{"action", "get"}, {"id", id}});
  EXPECT_EQ(kept["event"]["title"], "Team day");
  EXPECT_EQ(kept["event"]["updated_at"], "2026-11-23T14:04:05Z");

  auto removed = events(*alice_, {{"action", "remove"}, {"id", id}});
  EXPECT_EQ(removed["text"], "Removed " + id_text(id) +
                                 " Wed 25 Nov 2026, all day — Team day with Cem [importance 5/5]");
  auto gone = try_events(*alice_, {{"action", "get"}, {"id", id}});
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, ErrorCode::not_found);
}

TEST_F(EventsTest, ArgumentErrorsNameTheFieldAndWriteNothing) {
  const int64_t id = add_id(*alice_, {{"title", "keep"}, {"when", "tomorrow 10:00"}});
  struct Case {
    json args;
    std::string says;
  };
  const json t{{"action", "add"}, {"title", "t"}};
  const auto with = [&](json extra) {
    json a = t;
    a.update(extra);
    return a;
  };
  for (const auto& c : {
           Case{with({{"when", "tomorrow 10:00"}, {"duration_minutes", -5}}),
                "arguments.duration_minutes"},
           Case{with({{"when", "tomorrow 10:00"}, {"duration_minutes", 525601}}),
                "arguments.duration_minutes"},
           Case{with({{"when", "sometime soon"}}),
                "events: when: could not read the time 'sometime soon'; say it like in 10m"},
           Case{with({{"when", "tomorrow"}}), "events: when: 'tomorrow' needs a time of day"},
           Case{with({{"day", "the 5th"}}), "events: day: could not read the day 'the 5th'"},
           Case{with({{"when", "10:00"}, {"day", "today"}}),
                "events: give either \"when\" (a time) or \"day\""},
           Case{t, "events: add needs \"when\""},
           Case{{{"action", "add"}, {"when", "10:00"}}, "events: add needs a non-empty \"title\""},
           Case{with({{"title", " "}, {"when", "10:00"}}),
                "events: add needs a non-empty \"title\""},
           Case{with({{"when", "10:00"}, {"importance", 0}}), "arguments.importance"},
           Case{with({{"when", "10:00"}, {"importance", 6}}), "arguments.importance"},
           Case{with({{"when", "10:00"}, {"people", "Anna"}}), "arguments.people"},
           Case{with({{"when", "10:00"}, {"people", {"Anna", "  "}}}),
                "events: people[1] is empty"},
           Case{with({{"day", "tomorrow"}, {"duration_minutes", 90}}),
                "events: duration_minutes: an all-day event lasts whole days"},
           Case{with({{"when", "in 200 weeks"}, {"zone", "UTC"}}), "arguments.zone"},
           Case{with({{"when", "2200-01-01 10:00"}}),
                "events: when: '2200-01-01 10:00' is more "
                "than a century ahead"},
           Case{{{"action", "update"}, {"id", id}}, "events: update needs something to change"},
           Case{{{"action", "update"}, {"id", id}, {"when", "noon-ish"}}, "events: when:"},
           Case{{{"action", "update"}, {"when", "10:00"}},
                "events: update needs the event's \"id\""},
           Case{{{"action", "list"}, {"day", "today"}, {"from", "today"}}, "not both"},
           Case{{{"action", "list"}, {"from", "2026-12-05"}, {"to", "2026-12-01"}},
                "events: to (2026-12-01) is before from (2026-12-05)"},
           Case{{{"action", "list"}, {"from", "2026-01-01"}, {"to", "2027-12-31"}},
                "at most 366 days"},
           Case{{{"action", "list"}, {"to", "whenever"}}, "events: to: could not read the day"},
           Case{{{"action", "upcoming"}, {"days", 0}}, "arguments.days"},
           Case{{{"action", "publish"}}, "arguments.action"},
       }) {
    auto r = try_events(*alice_, c.args);
    ASSERT_FALSE(r.ok()) << c.args.dump();
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << c.args.dump();
    EXPECT_THAT(r.error().message, HasSubstr(c.says)) << c.args.dump();
    EXPECT_THAT(r.error().message, HasSubstr("events: ")) << c.args.dump();
  }
  auto all = events(*alice_, {{"action", "export"}});
  EXPECT_EQ(all["count"], 1);
  auto kept = events(*alice_, {{"action", "get"}, {"id", id}});
  EXPECT_EQ(kept["event"]["starts_at"], "2026-11-24T09:00:00Z");
}

TEST_F(EventsTest, UsersCannotReachEachOthersEventsByAnyId) {
  const int64_t a = add_id(*alice_, {{"title", "Alice's party"}, {"when", "tomorrow 20:00"}});
  const int64_t b = add_id(*bob_, {{"title", "Bob's gig"}, {"when", "tomorrow 21:00"}});
  const int64_t missing = b + 100;
  for (const int64_t id : {a, missing}) {
    for (const json& args :
         {json{{"action", "get"}, {"id", id}}, json{{"action", "remove"}, {"id", id}},
          json{{"action", "update"}, {"id", id}, {"title", "mine"}}}) {
      auto r = try_events(*bob_, args);
      ASSERT_FALSE(r.ok()) << args.dump();
      EXPECT_EQ(r.error().code, ErrorCode::not_found);
      EXPECT_EQ(r.error().message, "events: you have no event #" + std::to_string(id));
    }
  }
  auto bob_up = events(*bob_, {{"action", "upcoming"}});
  ASSERT_EQ(bob_up["events"].size(), 1u);
  EXPECT_EQ(bob_up["events"][0]["id"], b);
  EXPECT_EQ(events(*bob_, {{"action", "list"}, {"day", "tomorrow"}})["events"].size(), 1u);
  auto bob_file = events(*bob_, {{"action", "export"}});
  EXPECT_EQ(bob_file["count"], 1);
  const auto ics = bob_file["attachments"][0]["text"].get<std::string>();
  EXPECT_THAT(ics, HasSubstr("SUMMARY:Bob's gig"));
  EXPECT_THAT(ics, Not(HasSubstr("Alice")));
  const auto alice_uid = events(*alice_, {{"action", "get"}, {"id", a}})["event"]["uid"];
  EXPECT_THAT(ics, Not(HasSubstr(alice_uid.get<std::string>())));
  EXPECT_EQ(events(*alice_, {{"action", "get"}, {"id", a}})["event"]["title"], "Alice's party");
  EXPECT_EQ(events(*bob_, {{"action", "export"}})["count"], 1);
  events(*bob_, {{"action", "remove"}, {"id", b}});
  auto empty = events(*bob_, {{"action", "export"}});
  EXPECT_EQ(empty["count"], 0);
  EXPECT_EQ(empty["text"], "Your calendar file events.ics holds no events yet.");
  EXPECT_EQ(
      content_lines(empty["attachments"][0]["text"].get<std::string>()),
      (std::vector<std::string>{"BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//parley//events//EN",
                                "CALSCALE:GREGORIAN", "END:VCALENDAR"}));
}

TEST_F(EventsTest, UpcomingEventsForThePrompt) {
  const int64_t now = clock_.now_ms();
  const int64_t running = add_id(*alice_, {{"title", "Workshop"},
                                           {"when", "today 14:00"},
                                           {"duration_minutes", 180}});  // 13:00Z–16:00Z
  add_id(*alice_, {{"title", "Over"}, {"when", "today 09:00"}, {"duration_minutes", 60}});
  const int64_t today = add_id(*alice_, {{"title", "Today"}, {"day", "today"}});
  const int64_t trip = add_id(*alice_, {{"title", "Trip"},
                                        {"when", "in 2 days"},
                                        {"place", "Lisbon"},
                                        {"people", {"Ana", "Rui"}},
                                        {"importance", 5}});
  add_id(*alice_, {{"title", "Later"}, {"when", "in 10 days"}});
  add_id(*bob_, {{"title", "Bob's"}, {"when", "in 1 hour"}});

  auto r = upcoming_events(*store_, alice_->user_id(), now, 7 * kDay, 10);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].id, today);  // starts at midnight, on all day
  EXPECT_TRUE((*r)[0].all_day);
  EXPECT_EQ((*r)[0].zone, "Europe/Berlin");
  EXPECT_EQ((*r)[1].id, running);
  EXPECT_EQ((*r)[1].duration_minutes, 180);
  EXPECT_EQ((*r)[1].starts_at, utc_ms(std::chrono::year{2026} / 11 / 23, 13, 0));
  const UpcomingEvent& t = (*r)[2];
  EXPECT_EQ(t.id, trip);
  EXPECT_EQ(t.title, "Trip");
  EXPECT_EQ(t.starts_at, now + 2 * kDay);
  EXPECT_EQ(t.place, "Lisbon");
  EXPECT_EQ(t.people, (std::vector<std::string>{"Ana", "Rui"}));
  EXPECT_EQ(t.importance, 5);
  EXPECT_FALSE(t.all_day);
  EXPECT_FALSE(t.duration_minutes.has_value());

  auto two = upcoming_events(*store_, alice_->user_id(), now, 7 * kDay, 2);
  ASSERT_TRUE(two.ok());
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[1].id, running);
  auto later = upcoming_events(*store_, alice_->user_id(), now + 3 * kHour, 7 * kDay, 10);
  ASSERT_TRUE(later.ok());
  ASSERT_EQ(later->size(), 2u) << "the workshop is over by then";
  EXPECT_TRUE(upcoming_events(*store_, alice_->user_id(), now, 7 * kDay, 0)->empty());
  auto bob = upcoming_events(*store_, bob_->user_id(), now, kDay, 10);
  ASSERT_TRUE(bob.ok());
  ASSERT_EQ(bob->size(), 1u);
  EXPECT_EQ((*bob)[0].title, "Bob's");
}

TEST_F(EventsTest, NoStorageScopeNoEvents) {
  auto r = call("events", nullptr, {{"action", "upcoming"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::unavailable);
  EXPECT_THAT(r.error().message, HasSubstr("events:"));
}

TEST_F(EventsTest, CommandForms) {
  Capability* cap = registry_.find_command("events");
  ASSERT_EQ(cap, registry_.find("events"));
  const auto parse = [&](std::string_view text) { return cap->parse_command("events", text); };
  EXPECT_EQ(*parse(""), (json{{"action", "upcoming"}}));
  EXPECT_EQ(*parse("upcoming"), (json{{"action", "upcoming"}}));
  EXPECT_EQ(*parse("export"), (json{{"action", "export"}}));
  EXPECT_EQ(*parse("remove #3"), (json{{"action", "remove"}, {"id", 3}}));
  EXPECT_EQ(*parse("3"), (json{{"action", "get"}, {"id", 3}}));
  EXPECT_EQ(*parse("#3"), (json{{"action", "get"}, {"id", 3}}));
  EXPECT_EQ(*parse("list tomorrow"), (json{{"action", "list"}, {"day", "tomorrow"}}));
  EXPECT_EQ(*parse("add tomorrow 19:00 dinner with Anna"),
            (json{{"action", "add"}, {"when", "tomorrow 19:00"}, {"title", "dinner with Anna"}}));
  EXPECT_EQ(*parse("add tomorrow at 7pm dinner"),
            (json{{"action", "add"}, {"when", "tomorrow at 7pm"}, {"title", "dinner"}}));
  EXPECT_EQ(*parse("add 2026-12-06 10:00 market"),
            (json{{"action", "add"}, {"when", "2026-12-06 10:00"}, {"title", "market"}}));
  EXPECT_EQ(*parse("add in 2 hours call Bob"),
            (json{{"action", "add"}, {"when", "in 2 hours"}, {"title", "call Bob"}}));
  EXPECT_EQ(*parse("add 2026-12-06 Christmas market"),
            (json{{"action", "add"}, {"day", "2026-12-06"}, {"title", "Christmas market"}}));
  EXPECT_EQ(*parse("add tomorrow dinner"),
            (json{{"action", "add"}, {"day", "tomorrow"}, {"title", "dinner"}}));
  EXPECT_EQ(*parse("add next friday party"),
            (json{{"action", "add"}, {"day", "next friday"}, {"title", "party"}}));
  for (const char* bad : {"add", "add tomorrow 19:00", "add someday party", "remove", "remove x",
                          "export all", "frobnicate", "0"}) {
    auto r = parse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << bad;
    EXPECT_THAT(r.error().message, HasSubstr("events: ")) << bad;
  }
  EXPECT_THAT(parse("add someday party").error().message,
              HasSubstr("could not read a time or a day at the start of 'someday party'"));
  EXPECT_THAT(parse("add tomorrow 19:00").error().message, HasSubstr("what is it?"));
  EXPECT_THAT(parse("frobnicate").error().message, HasSubstr("/events add WHEN TITLE"));

  // Parsed commands run as they are, at the caller's clock and zone (Monday the 23rd).
  auto friday = events(*alice_, *parse("add friday party"));
  EXPECT_EQ(friday["event"]["day"], "2026-11-27");
  auto next_mon = events(*alice_, *parse("add next monday standup"));
  EXPECT_EQ(next_mon["event"]["day"], "2026-11-30");
  auto mon = events(*alice_, *parse("add monday today's thing"));
  EXPECT_EQ(mon["event"]["day"], "2026-11-23");
  auto dinner = events(*alice_, *parse("add tomorrow 19:00 dinner with Anna"));
  EXPECT_EQ(dinner["event"]["starts_at"], "2026-11-24T18:00:00Z");
  const auto id = dinner["event"]["id"].get<int64_t>();
  EXPECT_EQ(events(*alice_, *parse(std::to_string(id)))["event"]["title"], "dinner with Anna");
  auto exported = events(*alice_, *parse("export"));
  EXPECT_EQ(exported["count"], 4);
  EXPECT_EQ(events(*alice_, *parse(""))["events"].size(), 4u);
  events(*alice_, *parse("remove " + std::to_string(id)));
  EXPECT_EQ(events(*alice_, *parse(""))["events"].size(), 3u);
  EXPECT_EQ(cap->flags().side_effects, SideEffects::unsafe);
}

}  // namespace events_test
}  // namespace parley::capabilities
