// JSON Schema (draft 7) for capability arguments and settings, checked by valijson
// (libvalijson-dev, header-only, used privately by json_schema.cpp).
//
// Keywords: `type` (one or a list of string, integer, number, boolean, object, array, null),
// `enum`, `const`, `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` (numbers, as in
// draft 7), `multipleOf`, `minLength`, `maxLength`, `pattern`, `format`, `items` (a schema or a
// list of them), `additionalItems`, `minItems`, `maxItems`, `uniqueItems`, `contains`,
// `properties`, `patternProperties`, `additionalProperties` (true, false or a schema),
// `required`, `dependencies`, `propertyNames`, `minProperties`, `maxProperties`, `allOf`,
// `anyOf`, `oneOf`, `not`, `if`/`then`/`else`, `$ref` (into the same schema only: "#",
// "#/$defs/x", "#/definitions/x"), `$defs`, `definitions`; true/false as schemas; `$schema` at
// the root naming draft 4, 6, 7, 2019-09 or 2020-12 (MCP servers send it). `format`
// checks date, time and date-time on strings and is an annotation otherwise; `description`,
// `title`, `default`, `examples` and `$comment` are annotations. Any other keyword, a keyword
// with a malformed value (anywhere, also in unreferenced definitions), `then`/`else` without
// `if`, `additionalItems` without a list of `items`, a keyword beside `$ref` (draft 7 ignores
// it), a `$ref` that points at no schema and a cycle of `$ref`s make the schema itself invalid,
// so a schema never silently checks less than it says.
//
// A number without a fractional part is an integer: 3.0 matches "integer" and equals 3.
//
// Errors name the path of the offending value under `root` (`arguments.items[2].due`), what
// was expected and what was found: "expected string, got the number 5", "required but
// missing", "unknown field (known: a, b)", "expected one of "add", "list", got the string
// "x"", "matches none of the 2 alternatives (oneOf): (1) … | (2) …". valijson decides every
// keyword; the messages are written from the schema's keywords. A value of the wrong type is
// reported for its type alone.
//
// Parsed schemas are cached by their text (at most 256), so validating against the same schema
// again does not parse it again. Thread-safe; no exception escapes.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "parley/base/result.h"

namespace parley::capabilities {

// invalid_argument naming the unsupported keyword or malformed part of `schema`
// ("schema (root).a: unsupported keyword 'x'"). Parses and caches the schema.
Status check_schema(const nlohmann::json& schema);

// invalid_argument with up to five problems ("; "-separated), each naming its path under
// `root`. REQUIRES: check_schema(schema) succeeded (else its error is the one problem).
Status validate(const nlohmann::json& schema, const nlohmann::json& value,
                std::string_view root = "arguments");

struct SchemaProblem {
  std::string path;  // e.g. arguments.items[2].due
  std::string message;
};
// Every problem (up to `max`), separately. REQUIRES: check_schema(schema) succeeded (else its
// error is the one problem, at `root`).
std::vector<SchemaProblem> problems(const nlohmann::json& schema, const nlohmann::json& value,
                                    std::string_view root, size_t max = 20);

// `value` with every missing property that has a `default` filled in, recursively (through
// `properties`, following local `$ref`s). Never checks anything.
nlohmann::json with_defaults(const nlohmann::json& schema, nlohmann::json value);

// "a string", "the number 5", "an object", … for error messages (long strings shortened).
std::string describe_json(const nlohmann::json& value);

}  // namespace parley::capabilities
