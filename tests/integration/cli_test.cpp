// The real `parley` binary as a user runs it: start on embedded defaults, version, db check,
// db backup, and clear errors with exit code 2 for bad input.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "parley/storage/migrations.h"
#include "parley/storage/sqlite.h"
#include "support/run_parley.h"
#include "support/temp_dir.h"

namespace cli_test {

using parley::testing::contains;
using parley::testing::parley;
using parley::testing::TempDir;

TEST(Cli, VersionPrintsVersionAndSqlite) {
  TempDir dir;
  auto r = parley(dir.path(), "version");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "parley 0.")) << r.out;
  EXPECT_TRUE(contains(r.out, "SQLite 3.")) << r.out;
}

TEST(Cli, StartsOnEmbeddedDefaultsUnderData) {
  TempDir dir;
  auto r = parley(dir.path(), "run --check");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir / "data/parley.db"));
  EXPECT_TRUE(contains(r.out, "data/parley.db")) << r.out;
  EXPECT_TRUE(contains(
      r.out, "schema version: " + std::to_string(parley::storage::latest_schema_version())))
      << r.out;
  EXPECT_TRUE(contains(r.out, "health: ok")) << r.out;
  // A second start finds the database already migrated.
  auto again = parley(dir.path(), "run --check");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_FALSE(contains(again.out, "migrated")) << again.out;
}

constexpr const char* kNoLlmEnv =
    "env -u OPENROUTER_API_KEY -u OPENAI_API_KEY -u PARLEY_LLM_BASE_URL -u PARLEY_LLM_MODEL "
    "-u PARLEY_LLM_API_KEY";

TEST(Cli, WithoutAnLlmItSaysHowToConfigureOne) {
  TempDir dir;
  auto run = parley(dir.path(), "run --check", kNoLlmEnv);
  ASSERT_EQ(run.code, 0) << run.err;
  EXPECT_TRUE(contains(run.out, "No LLM is configured")) << run.out;
  EXPECT_TRUE(contains(run.out, "OPENROUTER_API_KEY")) << run.out;
  auto llm = parley(dir.path(), "llm", kNoLlmEnv);
  EXPECT_EQ(llm.code, 1) << llm.out;
  EXPECT_TRUE(contains(llm.out, "PARLEY_LLM_BASE_URL")) << llm.out;
}

TEST(Cli, LlmShowsWhereTheKeyComesFromNeverTheKey) {
  TempDir dir;
  const std::string env = std::string(kNoLlmEnv) + " OPENROUTER_API_KEY=sk-or-v1-TOPSECRET";
  auto text = parley(dir.path(), "llm", env);
  ASSERT_EQ(text.code, 0) << text.out << text.err;
  EXPECT_TRUE(contains(text.out, "OPENROUTER_API_KEY (set)")) << text.out;
  EXPECT_TRUE(contains(text.out, "openrouter:openai/gpt-4o-mini")) << text.out;
  auto as_json = parley(dir.path(), "llm --json", env);
  ASSERT_EQ(as_json.code, 0) << as_json.err;
  const auto j = nlohmann::json::parse(as_json.out);
  EXPECT_EQ(j["providers"]["openrouter"]["key_set"], true);
  auto run = parley(dir.path(), "run --check", env);
  ASSERT_EQ(run.code, 0) << run.err;
  EXPECT_TRUE(contains(run.out, "llm: openai/gpt-4o-mini via openrouter")) << run.out;
  for (const auto* r : {&text, &as_json, &run}) {
    EXPECT_FALSE(contains(r->out + r->err, "TOPSECRET")) << r->out << r->err;
  }
}

TEST(Cli, LlmBaseUrlAndModelFromTheEnvironment) {
  TempDir dir;
  auto r =
      parley(dir.path(), "llm --json",
             std::string(kNoLlmEnv) +
                 " PARLEY_LLM_BASE_URL=http://127.0.0.1:11434/v1 PARLEY_LLM_MODEL=llama3.1:8b");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["roles"]["smart"][0]["model"], "llama3.1:8b");
  EXPECT_EQ(j["providers"][j["default_provider"].get<std::string>()]["base_url"],
            "http://127.0.0.1:11434/v1");
}

TEST(Cli, DbCheckReportsIntegritySchemaAndWal) {
  TempDir dir;
  ASSERT_EQ(parley(dir.path(), "--db x.db run --check").code, 0);
  auto r = parley(dir.path(), "--db x.db db check");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "integrity: ok")) << r.out;
  EXPECT_TRUE(contains(r.out, "WAL")) << r.out;
  EXPECT_TRUE(contains(r.out, "schema version")) << r.out;

  auto j = parley(dir.path(), "--db x.db db check --json");
  ASSERT_EQ(j.code, 0) << j.err;
  auto doc = nlohmann::json::parse(j.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << j.out;
  EXPECT_EQ(doc["integrity"], "ok");
  EXPECT_EQ(doc["schema_version"], parley::storage::latest_schema_version());
  EXPECT_TRUE(doc.contains("wal_bytes"));
  EXPECT_TRUE(doc["write_queue"].contains("depth"));
  EXPECT_TRUE(doc["cache"].contains("hit_rate"));
}

TEST(Cli, DbCheckOfAMissingDatabaseIsBadInputAndCreatesNothing) {
  TempDir dir;
  auto r = parley(dir.path(), "--db missing.db db check");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "missing.db")) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "missing.db"));
}

TEST(Cli, DbCheckOfAFileThatIsNotADatabaseFailsClearly) {
  TempDir dir;
  std::ofstream(dir / "junk.db") << std::string(10000, 'j');
  auto r = parley(dir.path(), "--db junk.db db check");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.err, "junk.db")) << r.err;
  EXPECT_TRUE(contains(r.err, "not a database")) << r.err;
}

TEST(Cli, DbBackupWritesACheckedCopyAndNeverOverwrites) {
  TempDir dir;
  ASSERT_EQ(parley(dir.path(), "--db live.db run --check").code, 0);
  auto r = parley(dir.path(), "--db live.db db backup copy.db");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "copy.db")) << r.out;
  auto copy = parley::storage::Connection::open(dir / "copy.db");
  ASSERT_TRUE(copy.ok());
  EXPECT_TRUE(copy->integrity_check().ok());
  EXPECT_EQ(*parley::storage::schema_version(*copy), parley::storage::latest_schema_version());

  auto again = parley(dir.path(), "--db live.db db backup copy.db");
  EXPECT_EQ(again.code, 2);
  EXPECT_TRUE(contains(again.err, "already exists")) << again.err;
}

TEST(Cli, NewerDatabaseIsRefusedNamingBothVersions) {
  TempDir dir;
  ASSERT_EQ(parley(dir.path(), "--db new.db run --check").code, 0);
  {
    auto c = parley::storage::Connection::open(dir / "new.db");
    ASSERT_TRUE(c->exec("INSERT INTO schema_version VALUES (4242, 'future', 0)").ok());
  }
  auto r = parley(dir.path(), "--db new.db db check");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "4242")) << r.err;
  EXPECT_TRUE(
      contains(r.err, "version " + std::to_string(parley::storage::latest_schema_version())))
      << r.err;
}

TEST(Cli, MalformedConfigNamesFileLineAndKey) {
  TempDir dir;
  std::ofstream(dir / "bad.yaml") << "storage:\n  path: x.db\n  cache:\n    max_entries: many\n";
  auto r = parley(dir.path(), "--config bad.yaml run --check");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "bad.yaml:4")) << r.err;
  EXPECT_TRUE(contains(r.err, "storage.cache.max_entries")) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "x.db")) << "nothing is opened on a bad config";
}

TEST(Cli, ConfigChoosesTheDatabaseAndDbFlagOverridesIt) {
  TempDir dir;
  std::ofstream(dir / "p.yaml") << "storage:\n  path: from-config.db\n";
  ASSERT_EQ(parley(dir.path(), "--config p.yaml run --check").code, 0);
  EXPECT_TRUE(std::filesystem::exists(dir / "from-config.db"));
  ASSERT_EQ(parley(dir.path(), "--config p.yaml --db flag.db run --check").code, 0);
  EXPECT_TRUE(std::filesystem::exists(dir / "flag.db"));
}

TEST(Cli, UnknownCommandIsBadInput) {
  TempDir dir;
  auto r = parley(dir.path(), "frobnicate");
  EXPECT_EQ(r.code, 2);
  auto missing = parley(dir.path(), "db backup");
  EXPECT_EQ(missing.code, 2);
  EXPECT_TRUE(contains(missing.err, "PATH")) << missing.err;
}

}  // namespace cli_test
