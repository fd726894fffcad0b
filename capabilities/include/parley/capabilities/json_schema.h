// A JSON Schema checker for the subset capabilities use for their arguments and settings
// (Debian ships no C++ JSON Schema validator): `type` (one or a list of string, integer,
// number, boolean, object, array, null), `properties`, `required`, `additionalProperties`
// (true/false), `enum`, `minimum`, `maximum`, `minLength`, `maxLength`, `pattern`, `items`,
// `minItems`, `maxItems`, `default`; `description`, `title`, `format` and `examples` are
// accepted and not checked. Any other keyword makes the schema itself invalid, so a schema
// never silently checks less than it says.
//
// Errors name the path of the offending value (`arguments.items[2].due`), what was expected
// and what was found. Pure functions; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "parley/base/result.h"

namespace parley::capabilities {

// invalid_argument naming the unsupported keyword or malformed part of `schema`.
Status check_schema(const nlohmann::json& schema);

// invalid_argument with up to five problems ("; "-separated), each naming its path under
// `root`. REQUIRES: check_schema(schema) succeeded.
Status validate(const nlohmann::json& schema, const nlohmann::json& value,
                std::string_view root = "arguments");

struct SchemaProblem {
  std::string path;  // e.g. arguments.items[2].due
  std::string message;
};
// Every problem (up to `max`), separately. REQUIRES: check_schema(schema) succeeded.
std::vector<SchemaProblem> problems(const nlohmann::json& schema, const nlohmann::json& value,
                                    std::string_view root, size_t max = 20);

// `value` with every missing property that has a `default` filled in, recursively.
nlohmann::json with_defaults(const nlohmann::json& schema, nlohmann::json value);

// "a string", "the number 5", "an object", … for error messages (long strings shortened).
std::string describe_json(const nlohmann::json& value);

}  // namespace parley::capabilities
