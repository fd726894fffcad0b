// The JSON Schema subset: what it checks, how errors name the path, defaults, and schemas that
// use what it cannot check.
#include "parley/capabilities/json_schema.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace parley::capabilities {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

const json kTodo = {
    {"type", "object"},
    {"properties",
     {{"action", {{"type", "string"}, {"enum", {"add", "list", "done"}}}},
      {"text", {{"type", "string"}, {"minLength", 1}, {"maxLength", 10}}},
      {"id", {{"type", "integer"}, {"minimum", 1}}},
      {"tags", {{"type", "array"}, {"items", {{"type", "string"}}}, {"maxItems", 2}}},
      {"when", {{"type", "string"}, {"pattern", "^[0-9]{4}-"}}},
      {"limit", {{"type", "integer"}, {"default", 20}}}}},
    {"required", {"action"}},
    {"additionalProperties", false}};

std::string error_of(const json& schema, const json& value) {
  auto st = validate(schema, value);
  return st.ok() ? "(valid)" : st.error().message;
}

TEST(JsonSchema, AcceptsAValidValue) {
  ASSERT_TRUE(check_schema(kTodo).ok());
  EXPECT_EQ(error_of(kTodo, {{"action", "add"}, {"text", "milk"}, {"tags", {"a"}}}), "(valid)");
  EXPECT_EQ(error_of(kTodo, {{"action", "done"}, {"id", 3.0}}), "(valid)") << "3.0 is an integer";
}

TEST(JsonSchema, ErrorsNameThePathWhatWasExpectedAndWhatCame) {
  EXPECT_THAT(error_of(kTodo, {{"action", 5}}), HasSubstr("arguments.action: expected string, got the number 5"));
  EXPECT_THAT(error_of(kTodo, {{"action", "eat"}}), HasSubstr(R"(expected one of "add", "list", "done", got the string "eat")"));
  EXPECT_THAT(error_of(kTodo, json::object()), HasSubstr("arguments.action: required but missing"));
  EXPECT_THAT(error_of(kTodo, {{"action", "add"}, {"colour", "red"}}),
              HasSubstr("arguments.colour: unknown field (known: action"));
  EXPECT_THAT(error_of(kTodo, {{"action", "done"}, {"id", 0}}), HasSubstr("below the minimum 1"));
  EXPECT_THAT(error_of(kTodo, {{"action", "done"}, {"id", 1.5}}), HasSubstr("expected integer"));
  EXPECT_THAT(error_of(kTodo, {{"action", "add"}, {"text", ""}}), HasSubstr("at least 1 characters"));
  EXPECT_THAT(error_of(kTodo, {{"action", "add"}, {"text", "ééééééééééé"}}), HasSubstr("at most 10 characters, got 11"));
  EXPECT_THAT(error_of(kTodo, {{"action", "add"}, {"tags", {"a", 2}}}), HasSubstr("arguments.tags[1]: expected string"));
  EXPECT_THAT(error_of(kTodo, {{"action", "add"}, {"tags", {"a", "b", "c"}}}), HasSubstr("at most 2 items"));
  EXPECT_THAT(error_of(kTodo, {{"action", "add"}, {"when", "tomorrow"}}), HasSubstr("does not match the pattern"));
}

TEST(JsonSchema, ReportsSeveralProblemsAtOnce) {
  const auto e = error_of(kTodo, {{"text", 1}, {"id", "x"}});
  EXPECT_THAT(e, HasSubstr("arguments.action"));
  EXPECT_THAT(e, HasSubstr("arguments.text"));
  EXPECT_THAT(e, HasSubstr("arguments.id"));
}

TEST(JsonSchema, TypeListsAndNull) {
  const json s = {{"type", {"string", "null"}}};
  EXPECT_TRUE(validate(s, nullptr).ok());
  EXPECT_TRUE(validate(s, "x").ok());
  EXPECT_THAT(error_of(s, 1), HasSubstr("expected string or null"));
}

TEST(JsonSchema, DefaultsAreFilledIn) {
  const json filled = with_defaults(kTodo, {{"action", "list"}});
  EXPECT_EQ(filled["limit"], 20);
  EXPECT_EQ(with_defaults(kTodo, {{"action", "list"}, {"limit", 5}})["limit"], 5);
  const json nested = {{"type", "object"},
                       {"properties",
                        {{"caps", {{"type", "object"},
                                   {"properties", {{"max_bytes", {{"type", "integer"}, {"default", 1024}}}}}}}}}};
  EXPECT_EQ(with_defaults(nested, json::object())["caps"]["max_bytes"], 1024);
}

TEST(JsonSchema, SchemasUsingWhatItCannotCheckAreRefused) {
  EXPECT_THAT(check_schema({{"type", "object"}, {"oneOf", json::array()}}).error().message,
              HasSubstr("unsupported keyword 'oneOf'"));
  EXPECT_THAT(check_schema({{"type", "strin"}}).error().message, HasSubstr("bad type"));
  EXPECT_THAT(check_schema({{"properties", {{"a", {{"$ref", "#"}}}}}}).error().message,
              HasSubstr("schema (root).a: unsupported keyword '$ref'"));
  EXPECT_FALSE(check_schema({{"pattern", "(unclosed"}}).ok());
  EXPECT_FALSE(check_schema({{"minLength", -1}}).ok());
}

}  // namespace
}  // namespace parley::capabilities
