// The wall clock jumping under `parley run` (an NTP correction, a VM resumed), for real:
// libfaketime's preload moves the process's wall clock by the offset in a file the test
// rewrites while it runs (the monotonic clock stays, as it does when NTP steps the time).
// A reminder the clock jumps past fires once, late; jumping back and forward again fires
// nothing twice.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "fakes/fake_llm.h"
#include "parley/storage/store.h"
#include "served_bot.h"
#include "support/run_parley.h"
#include "support/temp_dir.h"

namespace clock_jump_test {

using parley::fakes::FakeLlmServer;
using parley::testing::ServedBot;
using parley::testing::TempDir;
using ::testing::HasSubstr;

constexpr const char* kFaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

TEST(ClockJump, AReminderTheClockJumpsPastFiresOnceAndJumpingBackFiresNothingAgain) {
  if (parley::testing::under_sanitizer())
    GTEST_SKIP() << "libfaketime's preload and a sanitizer's both want to be first";
  if (!std::filesystem::exists(kFaketime)) {
    GTEST_SKIP() << "libfaketime is not installed (faketime): scripts/deps --test";
  }
  TempDir dir;
  FakeLlmServer fake;
  const auto offset = dir / "clock_offset";
  parley::testing::write_file(offset, "+0\n");
  ServedBot bot(dir.path(), fake.base_url(), "--console on", "",
                std::string("LD_PRELOAD=") + kFaketime + " FAKETIME_TIMESTAMP_FILE=" +
                    offset.string() + " FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1");
  ASSERT_FALSE(bot.url().empty()) << bot.ready_line();
  auto say = [&](const std::string& line) { ASSERT_TRUE(bot.write_stdin(line + "\n")); };
  say("/remind in 10m stretch");
  ASSERT_FALSE(bot.wait_for_line("stretch", std::chrono::seconds(10)).empty())
      << "the reminder was set";

  // Twelve minutes forward: the next reminder set wakes the scheduler, which finds the first
  // one past due and fires it, marked late (over a minute overdue: two, so that the few
  // milliseconds between setting it and the jump never decide it).
  parley::testing::write_file(offset, "+720\n");
  say("/remind in 2h water");
  const std::string fired = bot.wait_for_line("⏰ Reminder", std::chrono::seconds(10));
  EXPECT_THAT(fired, HasSubstr("stretch"));
  EXPECT_THAT(fired, HasSubstr("late"));

  // Back to where it was, then forward again: nothing fires twice.
  parley::testing::write_file(offset, "+0\n");
  say("/remind in 3h tea");
  EXPECT_TRUE(bot.wait_for_line("⏰ Reminder", std::chrono::seconds(2)).empty());
  parley::testing::write_file(offset, "+780\n");
  say("/remind in 4h walk");
  EXPECT_TRUE(bot.wait_for_line("⏰ Reminder", std::chrono::seconds(2)).empty());
  EXPECT_EQ(bot.stop(), 0);

  auto store = parley::testing::open_bot_store(dir.path());
  auto conn = store->reads().acquire();
  auto st = conn->cached("SELECT text, state FROM reminders ORDER BY id");
  std::vector<std::pair<std::string, std::string>> rows;
  while ((*st)->step().value()) rows.emplace_back((*st)->column_text(0), (*st)->column_text(1));
  EXPECT_EQ(
      rows,
      (std::vector<std::pair<std::string, std::string>>{
          {"stretch", "fired"}, {"water", "pending"}, {"tea", "pending"}, {"walk", "pending"}}));
  auto fired_msgs = conn->cached(
      "SELECT count(*) FROM messages WHERE role = 'assistant' AND text LIKE '⏰%stretch%'");
  ASSERT_TRUE((*fired_msgs)->step().value());
  EXPECT_EQ((*fired_msgs)->column_int64(0), 1);
}

}  // namespace clock_jump_test
