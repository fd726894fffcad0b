// `parley capabilities` and `parley config check` as an operator runs them.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/run_parley.h"
#include "support/temp_dir.h"

namespace capabilities_cli_test {

using parley::testing::contains;
using parley::testing::parley;
using parley::testing::quote;
using parley::testing::shell;
using parley::testing::TempDir;
using parley::testing::write_file;

TEST(CapabilitiesCli, ListsEveryBuiltInEnabledByDefault) {
  TempDir dir;
  auto r = parley(dir.path(), "capabilities --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  std::vector<std::string> names;
  for (const auto& c : j) {
    names.push_back(c["name"]);
    EXPECT_TRUE(c["enabled"].get<bool>()) << c.dump();
    // The money capabilities (/credits, /alerts) are for admins only.
    EXPECT_EQ(c["status"], c["admin_only"].get<bool>() ? "enabled (default), admin only: admins"
                                                       : "enabled (default)");
  }
  for (const char* want : {"calc", "notes", "time", "todo"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  }
}

TEST(CapabilitiesCli, SaysWhichAreDisabledAndWhy) {
  TempDir dir;
  write_file(dir / "capabilities.yaml",
             "capabilities:\n  calc: {enabled: false}\n  todo: {allow: {roles: [family]}, "
             "rate_limit: {calls: 5, per_seconds: 60}}\n");
  write_file(dir / "parley.yaml", "capabilities: {file: capabilities.yaml}\n");
  auto r = parley(dir.path(), "--config parley.yaml capabilities");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "disabled in capabilities.yaml")) << r.out;
  EXPECT_TRUE(contains(r.out, "only for roles family")) << r.out;
  EXPECT_TRUE(contains(r.out, "5 calls per 60 s")) << r.out;
  EXPECT_TRUE(contains(r.out, "/todo add TEXT")) << r.out;
}

TEST(CapabilitiesCli, ConfigCheckAcceptsTheShippedExamples) {
  TempDir dir;
  const std::string src = PARLEY_SOURCE_DIR;
  auto r = parley(dir.path(), "config check " + src + "/config/parley.yaml " + src +
                                  "/config/capabilities.yaml");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "capabilities.yaml: ok")) << r.out;
}

// The kind of file is told by what it holds, not by its name.
TEST(CapabilitiesCli, ConfigCheckTellsTheKindsOfFileApartByWhatTheyHold) {
  TempDir dir;
  const std::string src = PARLEY_SOURCE_DIR;
  ASSERT_EQ(
      shell(dir.path(), "cp " + quote(src + "/config/capabilities.yaml") + " mycaps.yaml && cp " +
                            quote(src + "/config/prices.yaml") + " rates.yaml && cp " +
                            quote(src + "/config/parley.yaml") + " main.yaml")
          .code,
      0);
  auto r = parley(dir.path(), "config check mycaps.yaml rates.yaml main.yaml");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "mycaps.yaml: ok")) << r.out;
  EXPECT_TRUE(contains(r.out, "rates.yaml: ok")) << r.out;
  EXPECT_TRUE(contains(r.out, "main.yaml: ok")) << r.out;
  write_file(dir / "rates.yaml",
             "version: \"x\"\nmodels:\n  - {match: \"a/*\", effective: 2024-01-01, input: lots, "
             "output: 1}\n");
  r = parley(dir.path(), "config check rates.yaml");
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_TRUE(contains(r.err, "rates.yaml:")) << r.err;
}

TEST(CapabilitiesCli, ConfigCheckNamesFileLineColumnKeyExpectedAndFound) {
  TempDir dir;
  write_file(dir / "capabilities.yaml",
             "capabilities:\n  calc:\n    enabled: maybe\n    timeout_ms: -5\n  weather: {}\n");
  write_file(dir / "parley.yaml", "storage:\n  readers: many\n");
  auto r = parley(dir.path(), "config check parley.yaml capabilities.yaml");
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_TRUE(
      contains(r.err, "parley.yaml:2:12: storage.readers: expected an integer, found 'many'"))
      << r.err;
  EXPECT_TRUE(contains(
      r.err,
      "capabilities.yaml:3:14: capabilities.calc.enabled: expected true or false, found 'maybe'"))
      << r.err;
  EXPECT_TRUE(contains(r.err,
                       "capabilities.yaml:4:17: capabilities.calc.timeout_ms: expected an "
                       "integer in [1, 3600000], found -5"))
      << r.err;
  EXPECT_TRUE(
      contains(r.err, "capabilities.yaml:5:3: capabilities.weather: unknown capability 'weather'"))
      << r.err;
}

TEST(CapabilitiesCli, ConfigCheckWithBrokenYaml) {
  TempDir dir;
  write_file(dir / "capabilities.yaml", "capabilities:\n  calc: [\n");
  auto r = parley(dir.path(), "config check capabilities.yaml");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "invalid YAML")) << r.err;
}

TEST(CapabilitiesCli, ConfigCheckOfTheConfigAndItsCapabilitiesFile) {
  TempDir dir;
  write_file(dir / "caps.yaml", "capabilities:\n  nope: {}\n");
  write_file(dir / "parley.yaml", "capabilities: {file: caps.yaml}\n");
  // caps.yaml does not say "capabilities" in its name, but parley.yaml names it as such.
  auto r = parley(dir.path(), "--config parley.yaml config check");
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "parley.yaml: ok")) << r.out;
  EXPECT_TRUE(contains(r.err, "caps.yaml:2:3: capabilities.nope")) << r.err;
}

// Found by mutating the shipped files: a complex key (`? …`) under `capabilities:` aborted
// `parley config check` (and start-up) with an uncaught YAML::TypedBadConversion, exit 134.
TEST(CapabilitiesCli, ConfigCheckNamesAComplexKeyInsteadOfAborting) {
  TempDir dir;
  write_file(dir / "caps.yaml",
             "capabilities:\n  ? rate_limit: {calls: 60, per_seconds: 60}\n  calc: {}\n");
  write_file(dir / "parley.yaml",
             "capabilities: {file: caps.yaml}\nlog:\n  ? {level: debug}\n  level: info\n");
  write_file(
      dir / "prices.yaml",
      "version: v\n? rate_limit: {calls: 60}\nmodels:\n  - {match: a, input: 1, output: 1}\n");
  auto r = parley(dir.path(), "config check caps.yaml parley.yaml prices.yaml");
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_TRUE(contains(r.err, "caps.yaml:2:5: capabilities: expected a plain key, found a mapping"))
      << r.err;
  EXPECT_TRUE(contains(r.err, "parley.yaml:3:5: log: expected a plain key, found a mapping"))
      << r.err;
  EXPECT_TRUE(
      contains(r.err, "prices.yaml:2:3: (top level): expected a plain key, found a mapping"))
      << r.err;
  EXPECT_FALSE(contains(r.err, "terminate")) << r.err;
  // Through --config, as start-up reads the capabilities file it names.
  write_file(dir / "parley.yaml", "capabilities: {file: caps.yaml}\n");
  r = parley(dir.path(), "--config parley.yaml config check");
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_TRUE(contains(r.err, "caps.yaml:2:5: capabilities: expected a plain key, found a mapping"))
      << r.err;
}

}  // namespace capabilities_cli_test
