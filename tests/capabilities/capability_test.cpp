// Tests of the capability interface and registry: argument shape checked before the
// implementation runs, exceptions turned into errors, names validated, duplicates refused.
#include "parley/capabilities/capability.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>

namespace parley::capabilities {
namespace capability_test {

class Echo final : public Capability {
 public:
  explicit Echo(std::string name = "echo") : name_(std::move(name)) {}
  std::string_view name() const override { return name_; }
  std::string_view description() const override { return "echoes its text"; }
  nlohmann::json parameters() const override {
    return {{"type", "object"}, {"properties", {{"text", {{"type", "string"}}}}}};
  }
  int calls = 0;

 protected:
  Result<nlohmann::json> invoke_(const InvokeContext&, const nlohmann::json& args) override {
    ++calls;
    if (args.value("explode", false)) throw std::runtime_error("kaboom");
    return nlohmann::json{{"text", args.value("text", "")}};
  }

 private:
  std::string name_;
};

TEST(Capability, InvokesWithObjectArguments) {
  Echo e;
  auto r = e.invoke({}, {{"text", "hi"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["text"], "hi");
}

TEST(Capability, RejectsNonObjectArgumentsBeforeTheImplementation) {
  Echo e;
  auto r = e.invoke({}, nlohmann::json::array({1, 2}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(r.error().message.find("echo"), std::string::npos);
  EXPECT_NE(r.error().message.find("a list"), std::string::npos);
  EXPECT_EQ(e.calls, 0);
}

TEST(Capability, ExceptionBecomesAnInternalErrorNamingTheCapability) {
  Echo e;
  auto r = e.invoke({}, {{"explode", true}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::internal);
  EXPECT_NE(r.error().message.find("echo"), std::string::npos);
  EXPECT_NE(r.error().message.find("kaboom"), std::string::npos);
}

TEST(Registry, AddsFindsAndRefusesDuplicatesAndBadNames) {
  Registry reg;
  ASSERT_TRUE(reg.add(std::make_unique<Echo>()).ok());
  auto dup = reg.add(std::make_unique<Echo>());
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, ErrorCode::already_exists);
  auto bad = reg.add(std::make_unique<Echo>("Bad Name!"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(reg.find("echo"), nullptr);
  EXPECT_EQ(reg.find("nope"), nullptr);
  EXPECT_EQ(reg.names(), std::vector<std::string>{"echo"});
}

// A group (an MCP server's tools) is swapped whole while readers look it up without a lock;
// its names are checked and a replaced capability stays alive for a call in flight.
TEST(Registry, GroupsComeAndGoWholeAndReplacedOnesStayAlive) {
  Registry reg;
  ASSERT_TRUE(reg.add(std::make_unique<Echo>()).ok());
  std::vector<std::unique_ptr<Capability>> first;
  first.push_back(std::make_unique<Echo>("files.read_file"));
  first.push_back(std::make_unique<Echo>("files.write-file.v2"));
  first.push_back(std::make_unique<Echo>("echo"));            // no prefix
  first.push_back(std::make_unique<Echo>("Files.x"));         // the prefix is not lowercase
  first.push_back(std::make_unique<Echo>("files.bad name"));  // a space
  const auto r1 = reg.set_group("files", std::move(first));
  EXPECT_EQ(r1.added, (std::vector<std::string>{"files.read_file", "files.write-file.v2"}));
  ASSERT_EQ(r1.refused.size(), 3u);
  EXPECT_EQ(r1.refused[0].first, "echo");
  EXPECT_NE(r1.refused[0].second.find("<prefix>.<tool>"), std::string::npos);
  Capability* read = reg.find("files.read_file");
  ASSERT_NE(read, nullptr);
  EXPECT_EQ(reg.group_of("files.read_file"), "files");
  EXPECT_EQ(reg.group_of("echo"), "");
  EXPECT_EQ(reg.size(), 3u);
  EXPECT_EQ(reg.names(),
            (std::vector<std::string>{"echo", "files.read_file", "files.write-file.v2"}));
  EXPECT_EQ(reg.find_command("files.read_file"), nullptr) << "group tools answer no /command";

  // Another group may not take a name this one holds.
  std::vector<std::unique_ptr<Capability>> other;
  other.push_back(std::make_unique<Echo>("files.read_file"));
  other.push_back(std::make_unique<Echo>("web.search"));
  const auto r2 = reg.set_group("web", std::move(other));
  EXPECT_EQ(r2.added, std::vector<std::string>{"web.search"});
  ASSERT_EQ(r2.refused.size(), 1u);
  EXPECT_EQ(r2.refused[0].second, "the name is already taken by group files");

  // The server's list changed: the group is replaced; a call in flight still holds the old one.
  std::vector<std::unique_ptr<Capability>> second;
  second.push_back(std::make_unique<Echo>("files.read_file"));
  reg.set_group("files", std::move(second));
  EXPECT_NE(reg.find("files.read_file"), read) << "a new capability";
  EXPECT_EQ(reg.find("files.write-file.v2"), nullptr);
  EXPECT_TRUE(read->invoke(InvokeContext{}, {{"text", "still here"}}).ok());
  // Down: removed.
  reg.set_group("files", {});
  EXPECT_EQ(reg.find("files.read_file"), nullptr);
  EXPECT_EQ(reg.names(), (std::vector<std::string>{"echo", "web.search"}));
}

TEST(Registry, ReadersSeeAWholeGroupWhileItIsReplaced) {
  Registry reg;
  std::atomic<bool> stop{false};
  std::atomic<int> torn{0};
  std::thread reader([&] {
    while (!stop.load()) {
      // Both tools of a version, or neither: never one of the old with one of the new.
      const bool a1 = reg.find("g.a1") != nullptr;
      const bool b1 = reg.find("g.b1") != nullptr;
      const auto names = reg.names();
      const bool whole = names.empty() || names.size() == 2;
      if (!whole) ++torn;
      (void)a1;
      (void)b1;
    }
  });
  for (int i = 0; i < 2000; ++i) {
    std::vector<std::unique_ptr<Capability>> caps;
    const std::string v = i % 2 == 0 ? "1" : "2";
    caps.push_back(std::make_unique<Echo>("g.a" + v));
    caps.push_back(std::make_unique<Echo>("g.b" + v));
    reg.set_group("g", std::move(caps));
  }
  stop = true;
  reader.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(reg.size(), 2u);
}

}  // namespace capability_test
}  // namespace parley::capabilities
