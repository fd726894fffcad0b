// reminders: every accepted time form resolved for a caller in Europe/Paris at a fixed instant
// (table-driven, DST changes included), what is not understood or in the past refused with the
// accepted forms; create, list, cancel with their answers and what is stored (user,
// conversation, channel, due time, state); the per-user limit; every error, schema errors naming
// arguments.<field>; per-user isolation by every id; the /remind and /reminders command forms;
// and the bot's side — due_reminders with late flags, next_due_ms, mark_fired exactly once —
// across a restart of the store.
#include "parley/capabilities/reminders.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "capabilities/builtins/user_store_fixture.h"

namespace parley::capabilities {
namespace reminders_test {

using nlohmann::json;
using ::testing::HasSubstr;

int64_t utc_ms(std::chrono::year_month_day day, int h, int m, int s = 0) {
  const auto t = std::chrono::sys_days{day} + std::chrono::hours{h} + std::chrono::minutes{m} +
                 std::chrono::seconds{s};
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

constexpr int64_t kMinute = 60'000;

class RemindersTest : public UserStoreFixture {
 protected:
  void SetUp() override {
    UserStoreFixture::SetUp();
    auto conv = store_->directory().ensure_conversation("console", "main").get();
    ASSERT_TRUE(conv.ok());
    conversation_ = conv->row_id;
  }

  // Invokes reminders as `who`, a caller in `zone`, from the console conversation.
  Result<json> try_remind(const UserScope* who, const json& args,
                          const std::string& zone = "Europe/Paris",
                          const json& settings = json::object()) {
    InvokeContext ctx;
    ctx.caller.user_id = who != nullptr ? who->user_id() : 0;
    ctx.caller.time_zone = zone;
    ctx.conversation_id = conversation_;
    ctx.channel = "console";
    ctx.settings = settings;
    ctx.data = who;
    ctx.services = &services_;
    return registry_.find("reminders")->invoke(ctx, args);
  }
  json remind(const UserScope& who, const json& args, const std::string& zone = "Europe/Paris") {
    auto r = try_remind(&who, args, zone);
    EXPECT_TRUE(r.ok()) << args.dump() << ": " << (r.ok() ? "" : r.error().describe());
    return r.ok() ? *r : json();
  }
  json create(const UserScope& who, const std::string& when, const std::string& text = "x") {
    return remind(who, {{"action", "create"}, {"when", when}, {"text", text}});
  }
  int64_t create_id(const UserScope& who, const std::string& when, const std::string& text = "x") {
    return create(who, when, text)["reminder"]["id"].get<int64_t>();
  }

  // Closes the store and opens it again on the same file, as after a restart.
  void restart() {
    const int64_t a = alice_->user_id();
    const int64_t b = bob_->user_id();
    alice_.reset();
    bob_.reset();
    store_.reset();
    storage::StoreOptions o;
    o.path = dir_ / "parley.db";
    o.clock = &clock_;
    auto s = storage::Store::open(o);
    ASSERT_TRUE(s.ok()) << s.error().describe();
    store_ = std::move(*s);
    alice_.emplace(*store_, a);
    bob_.emplace(*store_, b);
  }

  int64_t conversation_ = 0;
};

struct Accepted {
  std::string when;
  std::string due_utc;
};

// The fixture's clock: Monday 2026-11-23 14:04:05 UTC, 15:04:05 in Paris (CET, UTC+1).
TEST_F(RemindersTest, AcceptedFormsInTheCallersZone) {
  for (const auto& c : {
           Accepted{"2026-11-24T09:00:00+01:00", "2026-11-24T08:00:00Z"},
           Accepted{"2026-11-24T08:00Z", "2026-11-24T08:00:00Z"},
           Accepted{"2026-11-24t08:00:00.250z", "2026-11-24T08:00:00Z"},
           Accepted{"2026-11-24T03:30-0530", "2026-11-24T09:00:00Z"},
           Accepted{"2026-11-24T08:00 UTC", "2026-11-24T08:00:00Z"},
           Accepted{"2026-11-24 09:00", "2026-11-24T08:00:00Z"},
           Accepted{"2027-07-01T09:00", "2027-07-01T07:00:00Z"},  // CEST in summer
           Accepted{"in 10m", "2026-11-23T14:14:05Z"},
           Accepted{"  IN   10M ", "2026-11-23T14:14:05Z"},
           Accepted{"in 2 hours", "2026-11-23T16:04:05Z"},
           Accepted{"in 1h30m", "2026-11-23T15:34:05Z"},
           Accepted{"in 1 hour and 30 minutes", "2026-11-23T15:34:05Z"},
           Accepted{"in 1h, 30 min", "2026-11-23T15:34:05Z"},
           Accepted{"in an hour", "2026-11-23T15:04:05Z"},
           Accepted{"in 45 s", "2026-11-23T14:04:50Z"},
           Accepted{"in 3 days", "2026-11-26T14:04:05Z"},
           Accepted{"in 2 weeks", "2026-12-07T14:04:05Z"},
           Accepted{"in 1d2h", "2026-11-24T16:04:05Z"},
           Accepted{"tomorrow 09:00", "2026-11-24T08:00:00Z"},
           Accepted{"Tomorrow at 9am", "2026-11-24T08:00:00Z"},
           Accepted{"today 18:30", "2026-11-23T17:30:00Z"},
           Accepted{"tonight 11pm", "2026-11-23T22:00:00Z"},
           Accepted{"18:30", "2026-11-23T17:30:00Z"},
           Accepted{"at 6:30 pm", "2026-11-23T17:30:00Z"},
           Accepted{"09:00", "2026-11-24T08:00:00Z"},  // already past today: tomorrow's
           Accepted{"15:04", "2026-11-24T14:04:00Z"},  // this very minute has begun: tomorrow's
           Accepted{"12am", "2026-11-23T23:00:00Z"},   // midnight in Paris
           Accepted{"12pm", "2026-11-24T11:00:00Z"},
       }) {
    auto r = try_remind(&*alice_, {{"action", "create"}, {"when", c.when}, {"text", "t"}});
    ASSERT_TRUE(r.ok()) << c.when << ": " << r.error().describe();
    EXPECT_EQ((*r)["reminder"]["due_at"], c.due_utc) << c.when;
  }
  auto r = create(*alice_, "tomorrow 09:00", "dentist");
  EXPECT_EQ(r["reminder"]["due_local"], "2026-11-24T09:00:00+01:00");
  EXPECT_EQ(r["reminder"]["state"], "pending");
  EXPECT_EQ(r["text"], "Reminder #" + std::to_string(r["reminder"]["id"].get<int64_t>()) +
                           " set for Tue 24 Nov 2026 09:00 (Europe/Paris): dentist");
}

TEST_F(RemindersTest, TheCallersZoneDecides) {
  EXPECT_EQ(create(*alice_, "tomorrow 09:00")["reminder"]["due_at"], "2026-11-24T08:00:00Z");
  auto utc = try_remind(&*alice_, {{"action", "create"}, {"when", "tomorrow 09:00"}, {"text", "t"}},
                        "UTC");
  EXPECT_EQ((*utc)["reminder"]["due_at"], "2026-11-24T09:00:00Z");
  auto ny = try_remind(&*alice_, {{"action", "create"}, {"when", "tomorrow 09:00"}, {"text", "t"}},
                       "America/New_York");
  EXPECT_EQ((*ny)["reminder"]["due_at"], "2026-11-24T14:00:00Z");
  auto unknown = try_remind(&*alice_, {{"action", "create"}, {"when", "18:30"}, {"text", "t"}},
                            "Mars/Olympus_Mons");
  ASSERT_TRUE(unknown.ok()) << "an unknown zone reads as UTC";
  EXPECT_EQ((*unknown)["reminder"]["due_at"], "2026-11-23T18:30:00Z");
  EXPECT_THAT((*unknown)["text"].get<std::string>(), HasSubstr("(UTC)"));
}

struct Dst {
  std::string when;
  std::string due_utc;
  std::string due_local;
};

TEST_F(RemindersTest, DaylightSavingChanges) {
  // Saturday 2026-10-24 12:00 in Paris (CEST, UTC+2); at 03:00 on Sunday clocks go back to 02:00.
  clock_.set_ms(utc_ms(std::chrono::year{2026} / 10 / 24, 10, 0));
  for (const auto& c : {
           Dst{"tomorrow 09:00", "2026-10-25T08:00:00Z", "2026-10-25T09:00:00+01:00"},
           Dst{"09:00", "2026-10-25T08:00:00Z", "2026-10-25T09:00:00+01:00"},
           Dst{"today 23:00", "2026-10-24T21:00:00Z", "2026-10-24T23:00:00+02:00"},
           Dst{"in 1 day", "2026-10-25T11:00:00Z", "2026-10-25T12:00:00+01:00"},  // same clock time
           Dst{"in 24 hours", "2026-10-25T10:00:00Z", "2026-10-25T11:00:00+01:00"},
           Dst{"tomorrow 02:30", "2026-10-25T00:30:00Z",
               "2026-10-25T02:30:00+02:00"},  // twice: 1st
       }) {
    auto r = create(*alice_, c.when);
    EXPECT_EQ(r["reminder"]["due_at"], c.due_utc) << c.when;
    EXPECT_EQ(r["reminder"]["due_local"], c.due_local) << c.when;
  }
  // Saturday 2026-03-28 13:00 in Paris (CET); at 02:00 on Sunday clocks jump to 03:00.
  clock_.set_ms(utc_ms(std::chrono::year{2026} / 3 / 28, 12, 0));
  for (const auto& c : {
           Dst{"tomorrow 09:00", "2026-03-29T07:00:00Z", "2026-03-29T09:00:00+02:00"},
           Dst{"in 1 day", "2026-03-29T11:00:00Z", "2026-03-29T13:00:00+02:00"},
           Dst{"tomorrow 02:30", "2026-03-29T01:00:00Z", "2026-03-29T03:00:00+02:00"},  // skipped
       }) {
    auto r = create(*alice_, c.when);
    EXPECT_EQ(r["reminder"]["due_at"], c.due_utc) << c.when;
    EXPECT_EQ(r["reminder"]["due_local"], c.due_local) << c.when;
  }
}

struct Refused {
  std::string when;
  std::string says;
};

TEST_F(RemindersTest, WhatIsNotUnderstoodOrPastIsRefused) {
  for (const auto& c : {
           Refused{"next week", "could not read the time 'next week'"},
           Refused{"tomorrow", "'tomorrow' needs a time of day"},
           Refused{"in 10 parsecs", "could not read 'parsecs' in the time 'in 10 parsecs'"},
           Refused{"in ten minutes", "could not read 'ten' in the time 'in ten minutes'"},
           Refused{"in 10", "could not read '10' in the time 'in 10'"},
           Refused{"in 5m!", "could not read '5m!'"},
           Refused{"in", "could not read the time 'in'"},
           Refused{"in 9999999 s", "could not read '9999999'"},
           Refused{"25:00", "could not read the time '25:00'"},
           Refused{"9", "could not read the time '9'"},
           Refused{"13pm", "could not read the time '13pm'"},
           Refused{"tomorrow 9", "could not read '9' in the time 'tomorrow 9'"},
           Refused{"yesterday 10:00", "could not read the time 'yesterday 10:00'"},
           Refused{"2026-13-01T00:00Z", "could not read the time '2026-13-01t00:00z'"},
           Refused{"2026-02-30T10:00Z", "could not read the time"},
           Refused{"2026-11-24T10:00+25:00", "could not read the time"},
           Refused{"   ", "when?"},
           Refused{"today 09:00",
                   "'today 09:00' is in the past (Mon 23 Nov 2026 09:00 "
                   "Europe/Paris, it is now Mon 23 Nov 2026 15:04)"},
           Refused{"2026-11-23T14:00Z", "is in the past"},
           Refused{"2026-11-23 15:04", "is in the past"},
           Refused{"in 0m", "is in the past"},
           Refused{"2020-01-01T00:00Z", "is in the past"},
           Refused{"in 600 weeks", "more than 10 years ahead"},
       }) {
    auto r = try_remind(&*alice_, {{"action", "create"}, {"when", c.when}, {"text", "t"}});
    ASSERT_FALSE(r.ok()) << c.when;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << c.when;
    EXPECT_THAT(r.error().message, HasSubstr("reminders: ")) << c.when;
    EXPECT_THAT(r.error().message, HasSubstr(c.says)) << c.when;
    if (c.says.find("could not read") != std::string::npos) {
      EXPECT_THAT(r.error().message, HasSubstr("say it like in 10m, in 2 hours, in 1h30m"))
          << "the accepted forms are named";
    }
  }
  EXPECT_EQ(remind(*alice_, {{"action", "list"}})["reminders"].size(), 0u);
}

TEST_F(RemindersTest, CreateListCancel) {
  const int64_t later = create_id(*alice_, "tomorrow 09:00", "call mom");
  const int64_t soon = create_id(*alice_, "in 10m", "stretch");
  auto list = remind(*alice_, {{"action", "list"}});
  ASSERT_EQ(list["reminders"].size(), 2u);
  EXPECT_EQ(list["reminders"][0]["id"], soon) << "soonest first";
  EXPECT_EQ(list["text"], "Your reminders (Europe/Paris time), soonest first:\n#" +
                              std::to_string(soon) + " Mon 23 Nov 2026 15:14 — stretch\n#" +
                              std::to_string(later) + " Tue 24 Nov 2026 09:00 — call mom");

  {  // What is stored: user, conversation and channel it came from, due time in UTC, state.
    auto conn = store_->reads().acquire();
    auto st = conn->prepare(
        "SELECT user_id, conversation_id, channel, due_at, text, state, created_at, fired_at "
        "FROM reminders WHERE id = ?");
    ASSERT_TRUE(st.ok());
    st->bind_all(soon);
    ASSERT_TRUE(*st->step());
    EXPECT_EQ(st->column_int64(0), alice_->user_id());
    EXPECT_EQ(st->column_int64(1), conversation_);
    EXPECT_EQ(st->column_text(2), "console");
    EXPECT_EQ(st->column_int64(3), clock_.now_ms() + 10 * kMinute);
    EXPECT_EQ(st->column_text(4), "stretch");
    EXPECT_EQ(st->column_text(5), "pending");
    EXPECT_EQ(st->column_int64(6), clock_.now_ms());
    EXPECT_TRUE(st->column_is_null(7));
  }

  auto cancelled = remind(*alice_, {{"action", "cancel"}, {"id", later}});
  EXPECT_EQ(cancelled["text"], "Cancelled reminder #" + std::to_string(later) + ": call mom");
  EXPECT_EQ(cancelled["reminder"]["state"], "cancelled");
  auto again = remind(*alice_, {{"action", "cancel"}, {"id", later}});
  EXPECT_EQ(again["text"],
            "Reminder #" + std::to_string(later) + " was already cancelled: call mom");
  ASSERT_EQ(remind(*alice_, {{"action", "list"}})["reminders"].size(), 1u);

  clock_.advance_ms(11 * kMinute);
  ASSERT_TRUE(mark_fired(*store_, soon, clock_.now_ms()).ok());
  auto fired = try_remind(&*alice_, {{"action", "cancel"}, {"id", soon}});
  ASSERT_FALSE(fired.ok());
  EXPECT_EQ(fired.error().code, ErrorCode::invalid_argument);
  EXPECT_THAT(fired.error().message, HasSubstr("already went off at 2026-11-23T14:15:05Z"));
  EXPECT_EQ(remind(*alice_, {{"action", "list"}})["text"], "You have no pending reminders.");

  auto missing = try_remind(&*alice_, {{"action", "cancel"}, {"id", 4242}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::not_found);
  EXPECT_EQ(missing.error().message, "reminders: you have no reminder #4242");
}

TEST_F(RemindersTest, WithoutAConversationTheReminderHasNone) {
  InvokeContext ctx;
  ctx.caller.user_id = alice_->user_id();
  ctx.data = &*alice_;
  ctx.services = &services_;
  auto r =
      registry_.find("reminders")
          ->invoke(ctx, {{"action", "create"}, {"when", "in 1m"}, {"text", "no conversation"}});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  auto due = due_reminders(*store_, clock_.now_ms() + kMinute, 10);
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].conversation_id, 0);
  EXPECT_EQ((*due)[0].channel, "");
}

// The soak found reminders set over HTTP firing into an outbox entry that no channel could ever
// send: a channel that only answers requests now refuses them, saying why, and keeps nothing.
TEST_F(RemindersTest, AChannelThatCannotReachTheUserRefusesAReminderAndKeepsNothing) {
  Services services = services_;
  services.reminders_reach = [](const std::string& channel) { return channel != "http"; };
  InvokeContext ctx;
  ctx.caller.user_id = alice_->user_id();
  ctx.conversation_id = conversation_;
  ctx.channel = "http";
  ctx.data = &*alice_;
  ctx.services = &services;
  auto r = registry_.find("reminders")
               ->invoke(ctx, {{"action", "create"}, {"when", "in 1m"}, {"text", "stretch"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::unavailable);
  EXPECT_THAT(r.error().message, HasSubstr("the http channel only answers requests"));
  EXPECT_TRUE(due_reminders(*store_, clock_.now_ms() + kMinute, 10)->empty());
  ctx.channel = "console";
  EXPECT_TRUE(registry_.find("reminders")
                  ->invoke(ctx, {{"action", "create"}, {"when", "in 1m"}, {"text", "stretch"}})
                  .ok());
}

TEST_F(RemindersTest, PendingRemindersPerUserAreLimited) {
  const json settings{{"max_pending", 2}};
  const auto make = [&](const UserScope& who) {
    return try_remind(&who, {{"action", "create"}, {"when", "in 1h"}, {"text", "t"}},
                      "Europe/Paris", settings);
  };
  const int64_t first = (*make(*alice_))["reminder"]["id"].get<int64_t>();
  ASSERT_TRUE(make(*alice_).ok());
  auto third = make(*alice_);
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().code, ErrorCode::resource_exhausted);
  EXPECT_EQ(third.error().message,
            "reminders: you already have 2 pending reminders; cancel some first");
  EXPECT_TRUE(make(*bob_).ok()) << "per user";
  ASSERT_TRUE(remind(*alice_, {{"action", "cancel"}, {"id", first}}).is_object());
  EXPECT_TRUE(make(*alice_).ok()) << "a cancelled one frees its place";
}

TEST_F(RemindersTest, UsersCannotReachEachOthersRemindersByAnyId) {
  const int64_t a1 = create_id(*alice_, "in 1h", "alice one");
  const int64_t b1 = create_id(*bob_, "in 1h", "bob one");
  const int64_t a2 = create_id(*alice_, "in 2h", "alice two");
  ASSERT_TRUE(remind(*alice_, {{"action", "cancel"}, {"id", a2}}).is_object());

  auto bobs = remind(*bob_, {{"action", "list"}});
  ASSERT_EQ(bobs["reminders"].size(), 1u);
  EXPECT_EQ(bobs["reminders"][0]["id"], b1);
  EXPECT_EQ(bobs["text"].get<std::string>().find("alice"), std::string::npos);

  for (int64_t id = 1; id <= a2 + 3; ++id) {
    if (id == b1) continue;
    auto r = try_remind(&*bob_, {{"action", "cancel"}, {"id", id}});
    ASSERT_FALSE(r.ok()) << id;
    EXPECT_EQ(r.error().code, ErrorCode::not_found);
    EXPECT_EQ(r.error().message, "reminders: you have no reminder #" + std::to_string(id))
        << "pending, cancelled or free: the same answer";
  }
  auto alices = remind(*alice_, {{"action", "list"}});
  ASSERT_EQ(alices["reminders"].size(), 1u);
  EXPECT_EQ(alices["reminders"][0]["id"], a1) << "Bob's cancel did not touch it";
  EXPECT_EQ(try_remind(&*alice_, {{"action", "cancel"}, {"id", b1}}).error().code,
            ErrorCode::not_found);
  EXPECT_EQ(remind(*bob_, {{"action", "list"}})["reminders"].size(), 1u);
}

TEST_F(RemindersTest, ArgumentErrors) {
  struct Case {
    json args;
    std::string says;
  };
  for (const auto& c : {
           Case{{{"action", "create"}, {"text", "t"}}, "reminders: create needs \"when\""},
           Case{{{"action", "create"}, {"when", "in 1h"}},
                "reminders: create needs a non-empty \"text\""},
           Case{{{"action", "create"}, {"when", "in 1h"}, {"text", "  "}},
                "reminders: create needs a non-empty \"text\""},
           Case{{{"action", "create"}, {"when", "in 1h"}, {"text", ""}}, "arguments.text"},
           Case{{{"action", "create"}, {"when", "in 1h"}, {"text", std::string(501, 'x')}},
                "arguments.text"},
           Case{{{"action", "create"}, {"when", 10}, {"text", "t"}}, "arguments.when"},
           Case{{{"action", "create"}, {"when", ""}, {"text", "t"}}, "arguments.when"},
           Case{{{"action", "create"}, {"when", std::string(101, '1')}, {"text", "t"}},
                "arguments.when"},
           Case{{{"action", "cancel"}}, "reminders: cancel needs the reminder's \"id\""},
           Case{{{"action", "cancel"}, {"id", "3"}}, "arguments.id"},
           Case{{{"action", "cancel"}, {"id", 0}}, "arguments.id"},
           Case{{{"action", "snooze"}}, "arguments.action"},
           Case{{{"when", "in 1h"}}, "arguments.action"},
           Case{{{"action", "list"}, {"user_id", 2}}, "arguments.user_id"},
       }) {
    auto r = try_remind(&*alice_, c.args);
    ASSERT_FALSE(r.ok()) << c.args.dump();
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << c.args.dump();
    EXPECT_THAT(r.error().message, HasSubstr(c.says)) << c.args.dump();
  }
  auto none = try_remind(nullptr, {{"action", "list"}});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::unavailable);
  EXPECT_THAT(none.error().message, HasSubstr("reminders:"));
}

TEST_F(RemindersTest, CommandForms) {
  Capability* cap = registry_.find("reminders");
  ASSERT_EQ(registry_.find_command("remind"), cap);
  ASSERT_EQ(registry_.find_command("reminders"), cap);
  const auto remind_cmd = [&](std::string_view text) { return cap->parse_command("remind", text); };
  const auto create_args = [](const char* when, const char* text) {
    return json{{"action", "create"}, {"when", when}, {"text", text}};
  };
  EXPECT_EQ(*remind_cmd("in 10m stretch"), create_args("in 10m", "stretch"));
  EXPECT_EQ(*remind_cmd("tomorrow 09:00 call mom"), create_args("tomorrow 09:00", "call mom"));
  EXPECT_EQ(*remind_cmd("tomorrow at 9am call mom"), create_args("tomorrow at 9am", "call mom"));
  EXPECT_EQ(*remind_cmd("2026-11-24T09:00+01:00 dentist"),
            create_args("2026-11-24T09:00+01:00", "dentist"));
  EXPECT_EQ(*remind_cmd("2026-11-24 09:00 dentist"), create_args("2026-11-24 09:00", "dentist"));
  EXPECT_EQ(*remind_cmd("in 1 hour 30 minutes take the cake out"),
            create_args("in 1 hour 30 minutes", "take the cake out"));
  EXPECT_EQ(*remind_cmd("  at 18:30   water the plants "),
            create_args("at 18:30", "water the plants"));
  EXPECT_EQ(*remind_cmd("in 2 hours and a half"), create_args("in 2 hours", "and a half"));
  EXPECT_EQ(*remind_cmd("18:30 9:00 meeting"), create_args("18:30", "9:00 meeting"));

  const auto list_cmd = [&](std::string_view text) {
    return cap->parse_command("reminders", text);
  };
  EXPECT_EQ(*list_cmd(""), (json{{"action", "list"}}));
  EXPECT_EQ(*list_cmd("list"), (json{{"action", "list"}}));
  EXPECT_EQ(*list_cmd("cancel 3"), (json{{"action", "cancel"}, {"id", 3}}));
  EXPECT_EQ(*list_cmd("cancel #3"), (json{{"action", "cancel"}, {"id", 3}}));

  struct Bad {
    std::string command;
    std::string text;
    std::string says;
  };
  for (const auto& b : {
           Bad{"remind", "", "usage: /remind WHEN TEXT"},
           Bad{"remind", "in 10m", "remind you of what?"},
           Bad{"remind", "call mom tomorrow", "could not read a time at the start of 'call mom"},
           Bad{"remind", "tomorrow call mom", "could not read a time at the start of"},
           Bad{"reminders", "cancel", "usage: /reminders [cancel ID]"},
           Bad{"reminders", "cancel x", "'x' is not an item number"},
           Bad{"reminders", "delete 3", "usage: /reminders [cancel ID]"},
           Bad{"reminders", "list 3", "usage: /reminders [cancel ID]"},
       }) {
    auto r = cap->parse_command(b.command, b.text);
    ASSERT_FALSE(r.ok()) << b.command << " " << b.text;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
    EXPECT_THAT(r.error().message, HasSubstr(b.says)) << b.command << " " << b.text;
  }
  EXPECT_THAT(remind_cmd("").error().message, HasSubstr("in 10m, in 2 hours"));

  // A parsed command runs as is.
  const int64_t id =
      remind(*alice_, *remind_cmd("in 10m stretch"))["reminder"]["id"].get<int64_t>();
  EXPECT_EQ(remind(*alice_, *list_cmd(""))["reminders"][0]["id"], id);
  EXPECT_EQ(remind(*alice_, *list_cmd("cancel " + std::to_string(id)))["reminder"]["state"],
            "cancelled");
  EXPECT_EQ(cap->flags().side_effects, SideEffects::unsafe);
}

TEST_F(RemindersTest, DueRemindersFireOnceAndSurviveARestart) {
  const int64_t t0 = clock_.now_ms();
  EXPECT_FALSE(next_due_ms(*store_)->has_value()) << "nothing pending";
  const int64_t soon = create_id(*alice_, "in 10m", "stretch");     // t0 + 10 min
  const int64_t hour = create_id(*bob_, "in 1h", "bob's tea");      // t0 + 60 min
  const int64_t doomed = create_id(*alice_, "in 2h", "cancel me");  // t0 + 120 min
  const int64_t tomorrow = create_id(*alice_, "tomorrow 09:00", "call mom");
  EXPECT_EQ(*next_due_ms(*store_), std::optional<int64_t>(t0 + 10 * kMinute));
  EXPECT_TRUE(due_reminders(*store_, clock_.now_ms(), 10)->empty());

  clock_.advance_ms(10 * kMinute);  // exactly due
  auto due = due_reminders(*store_, clock_.now_ms(), 10);
  ASSERT_TRUE(due.ok()) << due.error().describe();
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].id, soon);
  EXPECT_EQ((*due)[0].user_id, alice_->user_id());
  EXPECT_EQ((*due)[0].conversation_id, conversation_);
  EXPECT_EQ((*due)[0].channel, "console");
  EXPECT_EQ((*due)[0].text, "stretch");
  EXPECT_EQ((*due)[0].due_at, t0 + 10 * kMinute);
  EXPECT_FALSE((*due)[0].late);

  clock_.set_ms(t0 + 60 * kMinute + 30'000);  // Bob's is 30 s overdue, Alice's 50 min
  due = due_reminders(*store_, clock_.now_ms(), 10);
  ASSERT_EQ(due->size(), 2u);
  EXPECT_EQ((*due)[0].id, soon) << "the most overdue first";
  EXPECT_TRUE((*due)[0].late);
  EXPECT_EQ((*due)[1].id, hour);
  EXPECT_FALSE((*due)[1].late) << "30 s is not late";
  EXPECT_EQ((*due)[1].user_id, bob_->user_id());
  EXPECT_EQ(due_reminders(*store_, clock_.now_ms(), 1)->size(), 1u) << "limit";
  EXPECT_TRUE(due_reminders(*store_, clock_.now_ms(), 0)->empty());
  EXPECT_TRUE((*due_reminders(*store_, clock_.now_ms(), 10, 10'000))[1].late)
      << "the late threshold is the caller's";

  ASSERT_TRUE(mark_fired(*store_, soon, clock_.now_ms()).ok());
  auto twice = mark_fired(*store_, soon, clock_.now_ms());
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().code, ErrorCode::already_exists);
  EXPECT_EQ(mark_fired(*store_, 4242, clock_.now_ms()).error().code, ErrorCode::not_found);
  ASSERT_TRUE(remind(*alice_, {{"action", "cancel"}, {"id", doomed}}).is_object());
  auto cancelled = mark_fired(*store_, doomed, clock_.now_ms());
  ASSERT_FALSE(cancelled.ok());
  EXPECT_EQ(cancelled.error().code, ErrorCode::cancelled);
  EXPECT_EQ(*next_due_ms(*store_), std::optional<int64_t>(t0 + 60 * kMinute));

  restart();
  clock_.set_ms(t0 + 3 * 60 * kMinute);  // past the cancelled one too
  due = due_reminders(*store_, clock_.now_ms(), 10);
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), 1u) << "fired and cancelled ones are never due again";
  EXPECT_EQ((*due)[0].id, hour);
  EXPECT_TRUE((*due)[0].late) << "overdue after the restart";
  EXPECT_EQ(*next_due_ms(*store_), std::optional<int64_t>(t0 + 60 * kMinute));
  ASSERT_TRUE(mark_fired(*store_, hour, clock_.now_ms()).ok());
  EXPECT_TRUE(due_reminders(*store_, clock_.now_ms(), 10)->empty());

  const int64_t nine = utc_ms(std::chrono::year{2026} / 11 / 24, 8, 0);
  EXPECT_EQ(*next_due_ms(*store_), std::optional<int64_t>(nine));
  clock_.set_ms(nine);
  due = due_reminders(*store_, clock_.now_ms(), 10);
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].id, tomorrow);
  ASSERT_TRUE(mark_fired(*store_, tomorrow, clock_.now_ms()).ok());
  EXPECT_FALSE(next_due_ms(*store_)->has_value());

  // What the user sees afterwards: nothing pending; the fired state kept with its time.
  EXPECT_EQ(remind(*alice_, {{"action", "list"}})["reminders"].size(), 0u);
  auto conn = store_->reads().acquire();
  auto st = conn->prepare("SELECT state, fired_at FROM reminders WHERE id = ?");
  st->bind_all(tomorrow);
  ASSERT_TRUE(*st->step());
  EXPECT_EQ(st->column_text(0), "fired");
  EXPECT_EQ(st->column_int64(1), nine);
}

TEST_F(RemindersTest, RacingFirersFireOnce) {
  const int64_t id = create_id(*alice_, "in 1m", "once");
  clock_.advance_ms(kMinute);
  std::atomic<int> fired{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto r = mark_fired(*store_, id, clock_.now_ms());
      (r.ok() ? fired : refused)++;
      if (!r.ok()) {
        EXPECT_EQ(r.error().code, ErrorCode::already_exists);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(fired.load(), 1);
  EXPECT_EQ(refused.load(), 7);
}

}  // namespace reminders_test
}  // namespace parley::capabilities
