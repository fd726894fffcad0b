// register_builtins: every built-in is registered once, with valid schemas, and answers to its
// own distinct /command.
#include "parley/capabilities/builtins.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "parley/capabilities/json_schema.h"

namespace parley::capabilities {
namespace {

TEST(Builtins, RegistersAllFourWithDistinctCommands) {
  Registry registry;
  ASSERT_TRUE(register_builtins(registry).ok());
  EXPECT_EQ(registry.names(), (std::vector<std::string>{"calc", "notes", "time", "todo"}));
  std::set<std::string> commands;
  for (const auto& name : registry.names()) {
    Capability* cap = registry.find(name);
    ASSERT_NE(cap, nullptr);
    EXPECT_FALSE(cap->description().empty()) << name;
    EXPECT_TRUE(check_schema(cap->parameters()).ok()) << name;
    const auto specs = cap->commands();
    ASSERT_EQ(specs.size(), 1u) << name;
    EXPECT_EQ(specs[0].name, name);
    EXPECT_EQ(specs[0].usage.rfind("/" + name, 0), 0u) << specs[0].usage;
    EXPECT_FALSE(specs[0].help.empty()) << name;
    EXPECT_TRUE(commands.insert(specs[0].name).second) << "two built-ins answer /" << name;
    EXPECT_EQ(registry.find_command(specs[0].name), cap);
  }
  EXPECT_EQ(commands.size(), 4u);
}

TEST(Builtins, RegisteringTwiceIsRefused) {
  Registry registry;
  ASSERT_TRUE(register_builtins(registry).ok());
  auto again = register_builtins(registry);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::already_exists);
  EXPECT_EQ(registry.size(), 4u);
}

}  // namespace
}  // namespace parley::capabilities
