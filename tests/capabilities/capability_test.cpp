// Tests of the capability interface and registry: argument shape checked before the
// implementation runs, exceptions turned into errors, names validated, duplicates refused.
#include "parley/capabilities/capability.h"

#include <gtest/gtest.h>

#include <stdexcept>

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

}  // namespace capability_test
}  // namespace parley::capabilities
