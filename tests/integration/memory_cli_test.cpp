// `parley memory …` through the real binary: import of JSON Lines (a known external_id updates
// its memory; a bad line names FILE:LINE and nothing is imported), recall ranked as a turn ranks
// it (--json with id, external_id, kind, text, score), list, export, show with the trail, forget,
// and users named as CHANNEL:ID, #N or a console login.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/run_parley.h"
#include "support/temp_dir.h"

namespace memory_cli_test {

using nlohmann::json;
using parley::testing::parley;
using parley::testing::TempDir;
using parley::testing::write_file;
using ::testing::HasSubstr;
using ::testing::Not;

class MemoryCli : public ::testing::Test {
 protected:
  void SetUp() override {
    // Creates and seeds the database (without an LLM `run --check` exits 1; the file is there).
    (void)parley(dir_.path(), "--db m.db run --check");
  }
  parley::testing::Ran memory(const std::string& args) {
    return parley(dir_.path(), "--db m.db memory " + args);
  }
  TempDir dir_;
};

TEST_F(MemoryCli, ImportRecallListExportShowForget) {
  write_file(dir_ / "m.jsonl",
             R"({"text": "Lives in Porto", "external_id": "crm-1"})"
             "\n"
             R"({"text": "Loves green tea", "kind": "preference", "importance": 5})"
             "\n\n"
             R"({"text": "Started a new job at Acme", "kind": "event", "event_at": "2026-11-02"})"
             "\n");
  auto r = memory("import m.jsonl --user discord:42");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("3 new"));
  // Again: nothing new (the external id is known, the rest are exact duplicates).
  r = memory("import m.jsonl --user discord:42");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("0 new"));
  // A changed line with a known external id updates that memory.
  write_file(dir_ / "moved.jsonl", R"({"text": "Lives in Lisbon", "external_id": "crm-1"})"
                                   "\n");
  ASSERT_EQ(memory("import moved.jsonl --user discord:42").code, 0);

  r = memory("recall 'what tea do I like?' --user discord:42 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const json hits = json::parse(r.out);
  ASSERT_EQ(hits.size(), 1u) << r.out;
  EXPECT_EQ(hits[0]["text"], "Loves green tea");
  EXPECT_EQ(hits[0]["kind"], "preference");
  EXPECT_TRUE(hits[0]["external_id"].is_null());
  EXPECT_GT(hits[0]["score"].get<double>(), 0.5);
  r = memory("recall Lisbon --user discord:42 --json");
  const json lisbon = json::parse(r.out);
  ASSERT_EQ(lisbon.size(), 1u);
  EXPECT_EQ(lisbon[0]["external_id"], "crm-1");
  const int64_t lisbon_id = lisbon[0]["id"];
  EXPECT_TRUE(json::parse(memory("recall Porto --user discord:42 --json").out).empty());

  r = memory("list --user discord:42");
  EXPECT_THAT(r.out, HasSubstr("event"));
  EXPECT_THAT(r.out, HasSubstr("Started a new job at Acme"));
  r = memory("export --user discord:42");
  ASSERT_EQ(r.code, 0);
  size_t lines = 0;
  for (size_t at = 0; (at = r.out.find('\n', at)) != std::string::npos; ++at) ++lines;
  EXPECT_EQ(lines, 3u);
  EXPECT_THAT(r.out, HasSubstr(R"("event_at":"2026-11-02T00:00:00Z")"));

  r = memory("show " + std::to_string(lisbon_id) + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const json shown = json::parse(r.out);
  ASSERT_EQ(shown["events"].size(), 2u);
  EXPECT_EQ(shown["events"][1]["op"], "UPDATE");
  EXPECT_EQ(shown["events"][1]["old_text"], "Lives in Porto");

  ASSERT_EQ(memory("forget " + std::to_string(lisbon_id) + " --user discord:42").code, 0);
  EXPECT_TRUE(json::parse(memory("recall Lisbon --user discord:42 --json").out).empty());
  EXPECT_EQ(memory("forget " + std::to_string(lisbon_id) + " --user discord:42").code, 2);
  // The user by number is the same user.
  EXPECT_THAT(memory("list --user '#1'").out, HasSubstr("green tea"));
}

TEST_F(MemoryCli, ABadImportNamesEveryBadLineAndImportsNothing) {
  write_file(dir_ / "bad.jsonl", R"({"text": "fine"})"
                                 "\n"
                                 R"({"text": "x", "kind": "mood"})"
                                 "\n"
                                 R"({"text": "y", "event_at": "last week"})"
                                 "\n"
                                 R"({"txt": "z"})"
                                 "\n"
                                 "not json\n");
  auto r = memory("import bad.jsonl --user alice");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("bad.jsonl:2: \"kind\" \"mood\""));
  EXPECT_THAT(r.err, HasSubstr("bad.jsonl:3: \"event_at\" \"last week\""));
  EXPECT_THAT(r.err, HasSubstr("bad.jsonl:4: unknown key \"txt\""));
  EXPECT_THAT(r.err, HasSubstr("bad.jsonl:5: not a JSON object"));
  EXPECT_THAT(r.err, HasSubstr("nothing imported"));
  EXPECT_THAT(memory("list --user alice").out, Not(HasSubstr("fine")));
  r = memory("list --user nobody");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("no user console:nobody"));
  EXPECT_EQ(memory("import missing.jsonl --user alice").code, 2);
}

}  // namespace memory_cli_test
