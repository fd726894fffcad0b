// register_builtins: every built-in is registered once, with valid schemas, and answers to its
// own distinct /command.
#include "parley/capabilities/builtins.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "parley/capabilities/json_schema.h"

namespace parley::capabilities {
namespace builtins_test {

// Sorted, as Registry::names() lists them.
const std::vector<std::string> kBuiltins = {"account", "alerts",   "calc",  "credits",  "decisions",
                                            "events",  "expenses", "goals", "habits",   "journal",
                                            "lists",   "memory",   "mood",  "notes",    "reminders",
                                            "time",    "todo",     "usage", "web_fetch"};

TEST(Builtins, RegistersEveryBuiltInWithDistinctCommands) {
  Registry registry;
  ASSERT_TRUE(register_builtins(registry).ok());
  EXPECT_EQ(registry.names(), kBuiltins);
  std::set<std::string> commands;
  for (const auto& name : registry.names()) {
    Capability* cap = registry.find(name);
    ASSERT_NE(cap, nullptr);
    EXPECT_FALSE(cap->description().empty()) << name;
    EXPECT_TRUE(check_schema(cap->parameters()).ok()) << name;
    EXPECT_TRUE(check_schema(cap->settings_schema()).ok()) << name;
    const auto specs = cap->commands();
    ASSERT_FALSE(specs.empty()) << name;
    // One command named like the capability, or several of their own (memory: /remember,
    // /recall, /forget, /memories).
    for (const auto& spec : specs) {
      EXPECT_EQ(spec.usage.rfind("/" + spec.name, 0), 0u) << spec.usage;
      EXPECT_FALSE(spec.help.empty()) << name << " /" << spec.name;
      EXPECT_TRUE(commands.insert(spec.name).second) << "two built-ins answer /" << spec.name;
      EXPECT_EQ(registry.find_command(spec.name), cap) << spec.name;
    }
  }
}

TEST(Builtins, RegisteringTwiceIsRefused) {
  Registry registry;
  ASSERT_TRUE(register_builtins(registry).ok());
  auto again = register_builtins(registry);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::already_exists);
  EXPECT_EQ(registry.size(), kBuiltins.size());
}

}  // namespace builtins_test
}  // namespace parley::capabilities
