// JSON Schema on valijson: what it checks, how errors name the path, defaults, $ref, the
// combinators, and schemas that are malformed or use what it cannot check.
#include "parley/capabilities/json_schema.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace parley::capabilities {
namespace json_schema_test {

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
  EXPECT_THAT(error_of(kTodo, {{"action", 5}}),
              HasSubstr("arguments.action: expected string, got the number 5"));
  EXPECT_THAT(error_of(kTodo, {{"action", "eat"}}),
              HasSubstr(R"(expected one of "add", "list", "done", got the string "eat")"));
  EXPECT_THAT(error_of(kTodo, json::object()), HasSubstr("arguments.action: required but missing"));
  EXPECT_THAT(error_of(kTodo, {{"action", "add"}, {"colour", "red"}}),
              HasSubstr("arguments.colour: unknown field (known: action"));
  EXPECT_THAT(error_of(kTodo, {{"action", "done"}, {"id", 0}}), HasSubstr("below the minimum 1"));
  EXPECT_THAT(error_of(kTodo, {{"action", "done"}, {"id", 1.5}}), HasSubstr("expected integer"));
  EXPECT_THAT(error_of(kTodo, {{"action", "add"}, {"text", ""}}),
              HasSubstr("at least 1 characters"));
  EXPECT_THAT(error_of(kTodo, {{"action", "add"}, {"text", "ééééééééééé"}}),
              HasSubstr("at most 10 characters, got 11"));
  EXPECT_THAT(error_of(kTodo, {{"action", "add"}, {"tags", {"a", 2}}}),
              HasSubstr("arguments.tags[1]: expected string"));
  EXPECT_THAT(error_of(kTodo, {{"action", "add"}, {"tags", {"a", "b", "c"}}}),
              HasSubstr("at most 2 items"));
  EXPECT_THAT(error_of(kTodo, {{"action", "add"}, {"when", "tomorrow"}}),
              HasSubstr("does not match the pattern"));
}

// Found by schema_args_fuzz: text typed to a /command ("/expenses \xb9\xb9…") reached valijson,
// whose maxLength counted its characters by reading past a table (UBSan under the asan preset:
// index 64 out of bounds). Each byte that is not UTF-8 counts as one character.
TEST(JsonSchema, AStringThatIsNotUtf8IsMeasuredNeverReadPastItsEnd) {
  const json schema = {{"type", "object"},
                       {"properties", {{"text", {{"type", "string"}, {"maxLength", 10}}}}}};
  const auto st = validate(schema, {{"text", std::string(64, '\xb9') + "x"}});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(st.error().message, "arguments.text: expected at most 10 characters, got 65");
  EXPECT_TRUE(validate(schema, {{"text", "caf\xc3"}}).ok());
  EXPECT_TRUE(validate(schema, {{"text", "caf\xc3\xa9"}}).ok());
}

// Found by schema_args_fuzz: valijson measures a string up to its first NUL, so "\u0000" and
// any number of bytes after it passed maxLength (and "\u0000x" failed minLength 1, which the
// explanation then contradicted: "expected at least 1 characters, got 2").
TEST(JsonSchema, ANulCharacterIsNoWayPastMaxLength) {
  const json schema = {
      {"type", "object"},
      {"properties", {{"text", {{"type", "string"}, {"minLength", 1}, {"maxLength", 3}}}}}};
  const auto st = validate(schema, {{"text", std::string("a\0", 2) + std::string(10'000, 'x')}});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "arguments.text: expected at most 3 characters, got 10002");
  EXPECT_TRUE(validate(schema, {{"text", std::string("\0x", 2)}}).ok());
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
  const json nested = {
      {"type", "object"},
      {"properties",
       {{"caps",
         {{"type", "object"},
          {"properties", {{"max_bytes", {{"type", "integer"}, {"default", 1024}}}}}}}}}};
  EXPECT_EQ(with_defaults(nested, json::object())["caps"]["max_bytes"], 1024);
}

TEST(JsonSchema, SchemasUsingWhatItCannotCheckAreRefused) {
  // oneOf and $ref are supported now: an empty oneOf is malformed, and keywords valijson does
  // not know (draft 2019-09's) are refused, nested too.
  EXPECT_THAT(check_schema({{"type", "object"}, {"oneOf", json::array()}}).error().message,
              HasSubstr("oneOf must be a non-empty list of schemas"));
  EXPECT_THAT(check_schema({{"type", "strin"}}).error().message, HasSubstr("bad type"));
  EXPECT_THAT(check_schema({{"properties", {{"a", {{"$dynamicRef", "#"}}}}}}).error().message,
              HasSubstr("schema (root).a: unsupported keyword '$dynamicRef'"));
  EXPECT_THAT(check_schema({{"type", "object"}, {"unevaluatedProperties", false}}).error().message,
              HasSubstr("schema (root): unsupported keyword 'unevaluatedProperties'"));
  EXPECT_FALSE(check_schema({{"pattern", "(unclosed"}}).ok());
  EXPECT_FALSE(check_schema({{"minLength", -1}}).ok());
}

// A nested path names every key and index on the way.
TEST(JsonSchema, ErrorsNameThePathThroughNestedListsAndObjects) {
  const json s = {{"type", "object"},
                  {"properties",
                   {{"items",
                     {{"type", "array"},
                      {"items",
                       {{"type", "object"},
                        {"properties",
                         {{"due", {{"type", "string"}, {"format", "date"}}},
                          {"tags",
                           {{"type", "array"},
                            {"items", {{"type", "array"}, {"items", {{"type", "integer"}}}}}}}}},
                        {"required", {"due"}},
                        {"additionalProperties", false}}}}}}}};
  ASSERT_TRUE(check_schema(s).ok());
  const json ok = {
      {"items", {{{"due", "2024-05-31"}}, {{"due", "2024-06-01"}, {"tags", {{1, 2}, {3}}}}}}};
  EXPECT_EQ(error_of(s, ok), "(valid)");
  EXPECT_EQ(
      error_of(s, {{"items", {{{"due", "2024-05-31"}}, {{"due", "x"}}, {{"due", 5}}}}}),
      "arguments.items[1].due: expected a date like 2024-05-31 (format \"date\"), got the string "
      "\"x\"; arguments.items[2].due: expected string, got the number 5");
  EXPECT_THAT(error_of(s, {{"items", {{{"due", "2024-05-31"}, {"tags", {{1}, {2, "x"}}}}}}}),
              HasSubstr("arguments.items[0].tags[1][1]: expected integer, got the string \"x\""));
  EXPECT_THAT(
      error_of(s, {{"items", {json::object(), {{"due", "2024-05-31"}, {"colour", 1}}}}}),
      HasSubstr(
          "arguments.items[0].due: required but missing; arguments.items[1].colour: unknown field "
          "(known: due, tags)"));
  // problems() gives the same, one by one, under another root.
  const auto p = problems(s, {{"items", {{{"due", 5}}}}}, "settings");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].path, "settings.items[0].due");
  EXPECT_EQ(p[0].message, "expected string, got the number 5");
}

TEST(JsonSchema, RefsToDefinitionsAndDefsWork) {
  const json s = {{"type", "object"},
                  {"properties",
                   {{"when", {{"$ref", "#/definitions/moment"}}},
                    {"who", {{"$ref", "#/$defs/person"}}},
                    {"people", {{"type", "array"}, {"items", {{"$ref", "#/$defs/person"}}}}}}},
                  {"definitions", {{"moment", {{"type", "string"}, {"pattern", "^[0-9]{4}-"}}}}},
                  {"$defs",
                   {{"person",
                     {{"type", "object"},
                      {"properties", {{"name", {{"type", "string"}, {"minLength", 1}}}}},
                      {"required", {"name"}}}}}}};
  ASSERT_TRUE(check_schema(s).ok()) << check_schema(s).error().message;
  EXPECT_EQ(error_of(s, {{"when", "2024-05-31"}, {"who", {{"name", "Ann"}}}}), "(valid)");
  EXPECT_THAT(
      error_of(s, {{"when", "soon"}}),
      HasSubstr(R"(arguments.when: the string "soon" does not match the pattern "^[0-9]{4}-")"));
  EXPECT_THAT(error_of(s, {{"who", {{"name", 7}}}}),
              HasSubstr("arguments.who.name: expected string, got the number 7"));
  EXPECT_THAT(error_of(s, {{"people", {{{"name", "a"}}, json::object()}}}),
              HasSubstr("arguments.people[1].name: required but missing"));
  // A root that is itself a $ref, and a recursive schema.
  const json tree = {
      {"$ref", "#/$defs/node"},
      {"$defs",
       {{"node",
         {{"type", "object"},
          {"properties",
           {{"value", {{"type", "integer"}}},
            {"children", {{"type", "array"}, {"items", {{"$ref", "#/$defs/node"}}}}}}},
          {"additionalProperties", false}}}}}};
  ASSERT_TRUE(check_schema(tree).ok()) << check_schema(tree).error().message;
  EXPECT_EQ(
      error_of(tree, {{"value", 1}, {"children", {{{"value", 2}}, {{"children", json::array()}}}}}),
      "(valid)");
  EXPECT_EQ(error_of(tree, {{"children", {{{"children", {{{"value", "x"}}}}}}}}),
            R"(arguments.children[0].children[0].value: expected integer, got the string "x")");
  const json self = {{"type", "object"},
                     {"properties", {{"next", {{"$ref", "#"}}}, {"n", {{"type", "integer"}}}}}};
  ASSERT_TRUE(check_schema(self).ok());
  EXPECT_THAT(error_of(self, {{"next", {{"next", {{"n", "x"}}}}}}),
              HasSubstr("arguments.next.next.n: expected integer"));
}

TEST(JsonSchema, OneOfSaysWhatEachAlternativeObjectsTo) {
  const json s = {
      {"type", "object"},
      {"oneOf",
       {{{"properties", {{"action", {{"const", "add"}}}, {"text", {{"type", "string"}}}}},
         {"required", {"action", "text"}}},
        {{"properties", {{"action", {{"const", "list"}}}}}, {"required", {"action"}}}}}};
  ASSERT_TRUE(check_schema(s).ok()) << check_schema(s).error().message;
  EXPECT_EQ(error_of(s, {{"action", "add"}, {"text", "milk"}}), "(valid)");
  EXPECT_EQ(error_of(s, {{"action", "list"}}), "(valid)");
  EXPECT_EQ(error_of(s, {{"action", "add"}}),
            "arguments: matches none of the 2 alternatives (oneOf): (1) arguments.text: required "
            "but missing | "
            R"((2) arguments.action: expected "list", got the string "add")");
  // Matching both is an error too.
  const json both = {{"oneOf", {{{"type", "integer"}}, {{"type", "number"}, {"minimum", 0}}}}};
  ASSERT_TRUE(check_schema(both).ok());
  EXPECT_EQ(error_of(both, -1), "(valid)");
  EXPECT_EQ(error_of(both, 0.5), "(valid)");
  EXPECT_EQ(error_of(both, 3),
            "arguments: expected exactly one of the 2 alternatives (oneOf) to match, got the "
            "number 3 matching "
            "alternatives 1, 2");
  // Alternatives that differ only in their type read as a list of types.
  const json nullable = {{"oneOf", {{{"type", "string"}}, {{"type", "null"}}}}};
  EXPECT_EQ(error_of(nullable, 4), "arguments: expected string or null, got the number 4");
}

TEST(JsonSchema, AnyOfMatchesOneAlternativeOrSaysWhyNone) {
  const json s = {
      {"type", "object"},
      {"properties",
       {{"limit", {{"anyOf", {{{"type", "integer"}, {"minimum", 1}}, {{"const", "all"}}}}}},
        {"id", {{"anyOf", {{{"type", "string"}}, {{"type", "integer"}}}}}}}}};
  ASSERT_TRUE(check_schema(s).ok()) << check_schema(s).error().message;
  EXPECT_EQ(error_of(s, {{"limit", 5}, {"id", "a"}}), "(valid)");
  EXPECT_EQ(error_of(s, {{"limit", "all"}, {"id", 3}}), "(valid)");
  EXPECT_EQ(
      error_of(s, {{"limit", 0}}),
      R"(arguments.limit: matches none of the 2 alternatives (anyOf): (1) 0 is below the minimum 1 | (2) expected "all", got the number 0)");
  EXPECT_EQ(error_of(s, {{"id", true}}),
            "arguments.id: expected string or integer, got the boolean true");
}

TEST(JsonSchema, ConstMatchesExactlyOneValue) {
  const json s = {
      {"type", "object"},
      {"properties", {{"version", {{"const", 2}}}, {"mode", {{"const", {{"fast", true}}}}}}}};
  ASSERT_TRUE(check_schema(s).ok());
  EXPECT_EQ(error_of(s, {{"version", 2}, {"mode", {{"fast", true}}}}), "(valid)");
  EXPECT_EQ(error_of(s, {{"version", 2.0}}), "(valid)") << "2.0 is 2";
  EXPECT_EQ(error_of(s, {{"version", 3}}), "arguments.version: expected 2, got the number 3");
  EXPECT_EQ(error_of(s, {{"version", "2"}}),
            R"(arguments.version: expected 2, got the string "2")");
  EXPECT_EQ(error_of(s, {{"mode", {{"fast", false}}}}),
            R"(arguments.mode: expected {"fast":true}, got an object)");
}

TEST(JsonSchema, TheOtherKeywordsValijsonChecks) {
  const json s = {
      {"type", "object"},
      {"properties",
       {{"ratio", {{"type", "number"}, {"exclusiveMinimum", 0}, {"exclusiveMaximum", 1}}},
        {"step", {{"type", "integer"}, {"multipleOf", 5}}},
        {"tags", {{"type", "array"}, {"uniqueItems", true}, {"contains", {{"const", "main"}}}}},
        {"pair",
         {{"type", "array"},
          {"items", {{{"type", "string"}}, {{"type", "integer"}}}},
          {"additionalItems", false}}},
        {"name", {{"type", "string"}, {"not", {{"enum", {"root", "admin"}}}}}},
        {"labels",
         {{"type", "object"},
          {"patternProperties", {{"^x_", {{"type", "string"}}}}},
          {"additionalProperties", false},
          {"minProperties", 1},
          {"maxProperties", 2}}},
        {"env", {{"type", "object"}, {"propertyNames", {{"pattern", "^[A-Z_]+$"}}}}},
        {"from", {{"type", "string"}}},
        {"until", {{"type", "string"}}},
        {"kind", {{"enum", {"file", "url"}}}},
        {"path", {{"type", "string"}}},
        {"when", {{"type", "string"}, {"format", "date-time"}}}}},
      {"dependencies", {{"from", {"until"}}}},
      {"if", {{"properties", {{"kind", {{"const", "file"}}}}}, {"required", {"kind"}}}},
      {"then", {{"required", {"path"}}}},
      {"allOf", {{{"not", {{"required", {"url", "path"}}}}}}}};
  ASSERT_TRUE(check_schema(s).ok()) << check_schema(s).error().message;
  const json good = {{"ratio", 0.5},           {"step", 10},    {"tags", {"main", "b"}},
                     {"pair", {"a", 1}},       {"name", "ann"}, {"labels", {{"x_a", "1"}}},
                     {"env", {{"HOME", "/"}}}, {"from", "a"},   {"until", "b"},
                     {"kind", "file"},         {"path", "/x"},  {"when", "2024-05-31T09:30:00Z"}};
  EXPECT_EQ(error_of(s, good), "(valid)");
  const auto with = [&](const char* key, const json& v) {
    json args = good;
    args[key] = v;
    return error_of(s, args);
  };
  EXPECT_EQ(with("ratio", 1), "arguments.ratio: 1 is not below the exclusive maximum 1");
  EXPECT_EQ(with("ratio", 0), "arguments.ratio: 0 is not above the exclusive minimum 0");
  EXPECT_EQ(with("step", 12), "arguments.step: 12 is not a multiple of 5");
  EXPECT_EQ(with("tags", {"main", "b", "main"}),
            "arguments.tags[2]: expected unique items, got a repeat of item [0]");
  EXPECT_EQ(with("tags", {"a"}),
            "arguments.tags: expected at least one item matching the 'contains' schema, but none "
            "of the 1 items does");
  EXPECT_EQ(with("pair", {"a", "b"}), R"(arguments.pair[1]: expected integer, got the string "b")");
  EXPECT_EQ(with("pair", {"a", 1, 2}), "arguments.pair: expected at most 2 items, got 3");
  EXPECT_EQ(
      with("name", "admin"),
      R"(arguments.name: the string "admin" is not allowed here (it matches the 'not' schema))");
  EXPECT_EQ(with("labels", {{"y", "1"}}),
            R"(arguments.labels.y: unknown field (names must match "^x_"))");
  EXPECT_EQ(with("labels", {{"x_a", 1}}),
            "arguments.labels.x_a: expected string, got the number 1");
  EXPECT_EQ(with("labels", json::object()), "arguments.labels: expected at least 1 fields, got 0");
  EXPECT_EQ(with("labels", {{"x_a", "1"}, {"x_b", "2"}, {"x_c", "3"}}),
            "arguments.labels: expected at most 2 fields, got 3");
  EXPECT_EQ(
      with("env", {{"home", "/"}}),
      R"(arguments.env.home: invalid field name: the string "home" does not match the pattern "^[A-Z_]+$")");
  EXPECT_EQ(
      with("when", "2024-05-31"),
      R"(arguments.when: expected a date-time like 2024-05-31T09:30:00Z (format "date-time"), got the string "2024-05-31")");
  json no_until = good;
  no_until.erase("until");
  EXPECT_EQ(error_of(s, no_until),
            R"(arguments.until: required but missing (because "from" is given))");
  json no_path = good;
  no_path.erase("path");
  EXPECT_EQ(error_of(s, no_path), "arguments.path: required but missing")
      << "if kind is file, then path";
  json url = good;
  url.erase("path");
  url["kind"] = "url";
  EXPECT_EQ(error_of(s, url), "(valid)") << "no path needed otherwise";
  url["url"] = "u";
  url["path"] = "p";
  EXPECT_EQ(error_of(s, url),
            "arguments: an object is not allowed here (it matches the 'not' schema)");
  // format only describes strings; unknown formats are annotations.
  const json any_date = {{"format", "date"}};
  ASSERT_TRUE(check_schema(any_date).ok());
  EXPECT_EQ(error_of(any_date, 5), "(valid)");
  EXPECT_EQ(error_of(any_date, json{{"a", 1}}), "(valid)");
  EXPECT_EQ(error_of({{"type", "string"}, {"format", "email"}}, "not an email"), "(valid)");
  // Boolean schemas.
  const json closed = {{"properties", {{"secret", false}, {"any", true}}}};
  ASSERT_TRUE(check_schema(closed).ok());
  EXPECT_EQ(error_of(closed, {{"any", {1, 2}}}), "(valid)");
  EXPECT_EQ(error_of(closed, {{"secret", 1}}),
            "arguments.secret: not allowed here, got the number 1");
}

TEST(JsonSchema, MalformedSchemasAreRefusedWithTheReason) {
  const auto error = [](const json& schema) {
    auto st = check_schema(schema);
    return st.ok() ? std::string("(valid)") : st.error().message;
  };
  EXPECT_EQ(
      error({{"$ref", "#/definitions/nope"}}),
      R"(schema (root): $ref "#/definitions/nope" does not point to a schema in this document)");
  EXPECT_THAT(error({{"properties", {{"a", {{"$ref", "#/properties"}}}}}}),
              HasSubstr("does not point to a schema"))
      << "a map of schemas is not a schema";
  EXPECT_THAT(error({{"$ref", "#"}}), HasSubstr("is a cycle of references"));
  EXPECT_THAT(error({{"$ref", "#/$defs/a"},
                     {"$defs", {{"a", {{"$ref", "#/$defs/b"}}}, {"b", {{"$ref", "#/$defs/a"}}}}}}),
              HasSubstr("is a cycle of references"));
  EXPECT_THAT(error({{"$ref", "other.json#/a"}}),
              HasSubstr("$ref must be a reference into this schema"));
  EXPECT_THAT(error({{"properties", {{"a", {{"$ref", "#/$defs/x"}, {"maxLength", 3}}}}},
                     {"$defs", {{"x", true}}}}),
              HasSubstr("schema (root).a: '$ref' cannot be combined with 'maxLength'"));
  EXPECT_THAT(error({{"minLength", "5"}}), HasSubstr("minLength must be a non-negative integer"));
  EXPECT_THAT(error({{"additionalProperties", "false"}}),
              HasSubstr("schema (root).additionalProperties: expected an object (or true/false)"));
  EXPECT_THAT(error({{"then", {{"required", {"a"}}}}}),
              HasSubstr("'then' without 'if' would be ignored"));
  EXPECT_THAT(error({{"additionalItems", false}}),
              HasSubstr("additionalItems only applies when items is a list"));
  EXPECT_THAT(error({{"patternProperties", {{"(x", true}}}}),
              HasSubstr("patternProperties key \"(x\" does not compile"));
  EXPECT_THAT(error({{"description", 5}}), HasSubstr("description must be a string"));
  EXPECT_THAT(error({{"exclusiveMinimum", true}}), HasSubstr("exclusiveMinimum must be a number"));
  EXPECT_THAT(error({{"multipleOf", 0}}), HasSubstr("multipleOf must be a number above 0"));
  EXPECT_THAT(error({{"enum", json::array()}}), HasSubstr("enum must be a non-empty list"));
  EXPECT_THAT(error({{"type", {"string", "string"}}}), HasSubstr("bad type"));
  EXPECT_THAT(error({{"items", 5}}),
              HasSubstr("schema (root)[]: expected an object (or true/false)"));
  // Unreferenced definitions and every combinator branch are checked too.
  EXPECT_THAT(error({{"$defs", {{"unused", {{"minimum", "1"}}}}}}),
              HasSubstr("schema (root).$defs.unused: minimum must be a number"));
  EXPECT_THAT(error({{"anyOf", {{{"type", "string"}}, {{"tpye", "integer"}}}}}),
              HasSubstr("schema (root).anyOf[1]: unsupported keyword 'tpye'"));
  EXPECT_THAT(error({{"dependencies", {{"a", {1}}}}}),
              HasSubstr("dependencies.a must be a list of names or a schema"));
  // validate() on a schema that is not valid reports that, and does not throw.
  EXPECT_THAT(error_of({{"pattern", "(unclosed"}}, "x"),
              HasSubstr("arguments: schema (root): pattern does not compile"));
  EXPECT_EQ(
      error(
          {{"$ref", "#/$defs/a"}, {"$defs", {{"a", {{"type", "string"}}}}}, {"description", "ok"}}),
      "(valid)");
}

// MCP servers (zod-to-json-schema) put the dialect at the root of every input schema.
TEST(JsonSchema, ADialectAtTheRootIsReadAndAnUnknownOneRefused) {
  const json mcp = {{"$schema", "http://json-schema.org/draft-07/schema#"},
                    {"type", "object"},
                    {"properties", {{"message", {{"type", "string"}}}}},
                    {"required", {"message"}}};
  ASSERT_TRUE(check_schema(mcp).ok()) << check_schema(mcp).error().message;
  EXPECT_EQ(error_of(mcp, {{"message", "hi"}}), "(valid)");
  EXPECT_THAT(error_of(mcp, {{"message", 5}}),
              HasSubstr("arguments.message: expected string, got the number 5"));
  EXPECT_THAT(error_of(mcp, json::object()), HasSubstr("arguments.message: required but missing"));
  for (const char* dialect : {"https://json-schema.org/draft/2020-12/schema",
                              "http://json-schema.org/draft-04/schema#"}) {
    EXPECT_TRUE(check_schema({{"$schema", dialect}, {"type", "object"}}).ok()) << dialect;
  }
  auto st = check_schema({{"$schema", "https://example.org/my-dialect"}, {"type", "object"}});
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.error().message, HasSubstr("$schema \"https://example.org/my-dialect\" is not a "
                                            "dialect this validator reads"));
  st = check_schema(
      {{"properties", {{"a", {{"$schema", "http://json-schema.org/draft-07/schema#"}}}}}});
  ASSERT_FALSE(st.ok()) << "only the root names the dialect";
  EXPECT_THAT(st.error().message, HasSubstr("unsupported keyword '$schema'"));
}

TEST(JsonSchema, DefaultsFollowRefs) {
  const json s = {
      {"type", "object"},
      {"properties", {{"caps", {{"$ref", "#/$defs/caps"}}}, {"mode", {{"$ref", "#/$defs/mode"}}}}},
      {"$defs",
       {{"caps",
         {{"type", "object"}, {"properties", {{"max", {{"type", "integer"}, {"default", 7}}}}}}},
        {"mode", {{"type", "string"}, {"default", "fast"}}}}}};
  ASSERT_TRUE(check_schema(s).ok());
  EXPECT_EQ(with_defaults(s, json::object()), (json{{"caps", {{"max", 7}}}, {"mode", "fast"}}));
  // A recursive schema does not fill forever.
  const json tree = {{"type", "object"},
                     {"properties", {{"child", {{"$ref", "#"}}}, {"n", {{"default", 1}}}}}};
  EXPECT_EQ(with_defaults(tree, json::object())["n"], 1);
}

// validate() is called per tool call: the parsed schema is cached, from any thread.
TEST(JsonSchema, RepeatedAndConcurrentValidationShareTheParsedSchema) {
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        // Some schemas shared by every thread, some only this one's, more than the cache holds.
        const json s = {
            {"type", "object"},
            {"properties",
             {{"n", {{"type", "integer"}, {"maximum", i % 2 == 0 ? 10 : 1000 + t * 200 + i}}}}},
            {"additionalProperties", false}};
        if (!validate(s, {{"n", 5}}).ok()) ++wrong;
        if (validate(s, {{"n", 5000}}).ok()) ++wrong;
        if (validate(kTodo, {{"action", "add"}}).ok() == false) ++wrong;
        if (error_of(kTodo, {{"action", 5}}) !=
            "arguments.action: expected string, got the number 5")
          ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace json_schema_test
}  // namespace parley::capabilities
