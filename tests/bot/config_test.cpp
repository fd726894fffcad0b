// Tests of parley.yaml loading: defaults, every key, and errors naming file, line and key.
#include "parley/bot/config.h"

#include <gtest/gtest.h>

namespace parley::bot {
namespace {

TEST(Config, DefaultsPutTheDatabaseUnderData) {
  const auto c = default_config();
  EXPECT_EQ(c.storage.path, "data/parley.db");
  EXPECT_TRUE(c.source.empty());
}

TEST(Config, ExampleConfigInTheRepositoryLoads) {
  const auto c = load_config(std::string(PARLEY_SOURCE_DIR) + "/config/parley.yaml");
  EXPECT_EQ(c.storage.path, "data/parley.db");
  EXPECT_EQ(c.log_level, "info");
}

TEST(Config, ReadsEveryStorageKey) {
  const auto c = parse_config(R"(
storage:
  path: /tmp/x.db
  readers: 2
  history_messages: 20
  busy_timeout_ms: 100
  page_cache_kib: 1024
  mmap_size_mib: 0
  checkpoint_pages: 50
  cache:
    max_entries: 5
    max_bytes_mib: 1
  write_queue:
    max_batch: 64
    max_wait_us: 0
    capacity: 10
log:
  level: debug
)",
                              "t.yaml");
  EXPECT_EQ(c.storage.path, "/tmp/x.db");
  EXPECT_EQ(c.storage.readers, 2u);
  EXPECT_EQ(c.storage.history_messages, 20u);
  EXPECT_EQ(c.storage.connection.busy_timeout_ms, 100);
  EXPECT_EQ(c.storage.connection.page_cache_kib, 1024);
  EXPECT_EQ(c.storage.connection.mmap_size_bytes, 0);
  EXPECT_EQ(c.storage.checkpoint_pages, 50);
  EXPECT_EQ(c.storage.cache.max_entries, 5u);
  EXPECT_EQ(c.storage.cache.max_bytes, 1u << 20);
  EXPECT_EQ(c.storage.queue.max_batch, 64u);
  EXPECT_EQ(c.storage.queue.max_wait.count(), 0);
  EXPECT_EQ(c.storage.queue.capacity, 10u);
  EXPECT_EQ(c.log_level, "debug");
}

std::string error_of(const std::string& yaml) {
  try {
    (void)parse_config(yaml, "p.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Config, UnknownKeyNamesFileLineAndKey) {
  const auto e = error_of("storage:\n  path: a.db\n  reders: 3\n");
  EXPECT_NE(e.find("p.yaml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("storage.reders"), std::string::npos) << e;
  EXPECT_NE(e.find("readers"), std::string::npos) << "lists the known keys: " << e;
}

TEST(Config, WrongTypeNamesTheValue) {
  const auto e = error_of("storage:\n  cache:\n    max_entries: lots\n");
  EXPECT_NE(e.find("p.yaml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("storage.cache.max_entries"), std::string::npos) << e;
  EXPECT_NE(e.find("lots"), std::string::npos) << e;
}

TEST(Config, OutOfRangeAndBadEnum) {
  EXPECT_NE(error_of("storage:\n  readers: 0\n").find("out of range"), std::string::npos);
  EXPECT_NE(error_of("log:\n  level: loud\n").find("log.level"), std::string::npos);
  EXPECT_NE(error_of("storage: [1, 2]\n").find("expected a mapping"), std::string::npos);
}

TEST(Config, BrokenYamlNamesTheLine) {
  const auto e = error_of("storage:\n  path: [unclosed\n");
  EXPECT_NE(e.find("p.yaml:"), std::string::npos) << e;
  EXPECT_NE(e.find("invalid YAML"), std::string::npos) << e;
}

TEST(Config, MissingFileIsAnError) {
  EXPECT_THROW((void)load_config("/nonexistent/parley.yaml"), ConfigError);
}

TEST(Config, EmptyFileMeansDefaults) {
  const auto c = parse_config("", "empty.yaml");
  EXPECT_EQ(c.storage.path, "data/parley.db");
}

}  // namespace
}  // namespace parley::bot
