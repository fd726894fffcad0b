// schema_args_fuzz: a libFuzzer target for what reaches a built-in capability from outside:
// JSON tool-call arguments checked by json_schema.h against its parameters() (what the model
// sends), and the `/command` argument parser parse_command() (what a user types).
//
// The input is "/command text" up to the first newline, then the arguments as JSON text. The
// command is split as the command router splits it (a two-word command first); when no
// capability answers to it, the first byte chooses one of the built-ins (register_builtins)
// and the second one of its commands, and the whole first line is the text. The seed corpus
// (tests/fuzz/corpus/schema_args/) holds commands people type and arguments models send.
//
// Invariants (a violation aborts, and libFuzzer keeps the input):
// - validate() and problems() never throw and agree: ok iff no problem; an error is
//   invalid_argument whose message is non-empty and names the root ("arguments").
// - Arguments that validate still validate once with_defaults() filled in the schema's
//   defaults, and filling them in twice changes nothing (a default the schema refuses would
//   break every call that leaves the field out).
// - parse_command() never throws; it gives an object or invalid_argument with a message
//   starting with the capability's name. What it gives for a text of at most 80 bytes (UTF-8,
//   without NUL) validates against parameters() (else the user hears a schema error about JSON
//   fields they never wrote, instead of the command's usage) — but for the one field whose
//   range a parser leaves to the schema on purpose (/decisions outcome's satisfaction).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "parley/base/text.h"
#include "parley/capabilities/builtins.h"
#include "parley/capabilities/capability.h"
#include "parley/capabilities/json_schema.h"

namespace {

namespace caps = parley::capabilities;
using nlohmann::json;
using parley::ErrorCode;

using parley::fuzz::violated;

struct Builtins {
  caps::Registry registry;
  std::vector<const caps::Capability*> all;
  std::vector<json> parameters;  // by the same index
};

const Builtins& builtins() {
  static const Builtins* b = [] {
    auto* out = new Builtins();
    if (!caps::register_builtins(out->registry).ok()) violated("register_builtins", __LINE__);
    for (const auto& name : out->registry.names()) {
      const caps::Capability* c = out->registry.find(name);
      out->all.push_back(c);
      out->parameters.push_back(c->parameters());
      if (!caps::check_schema(out->parameters.back()).ok()) violated("a schema", __LINE__);
    }
    return out;
  }();
  return *b;
}

size_t index_of(const Builtins& b, const caps::Capability* c) {
  for (size_t i = 0; i < b.all.size(); ++i) {
    if (b.all[i] == c) return i;
  }
  violated("a capability not in the registry", __LINE__);
}

void check_validation(const json& schema, const json& args) {
  const parley::Status st = caps::validate(schema, args);
  const auto found = caps::problems(schema, args, "arguments");
  PARLEY_FUZZ_CHECK(st.ok() == found.empty());
  if (!st.ok()) {
    PARLEY_FUZZ_CHECK(st.error().code == ErrorCode::invalid_argument);
    PARLEY_FUZZ_CHECK(!st.error().message.empty());
    PARLEY_FUZZ_CHECK(st.error().message.find("arguments") != std::string::npos);
    for (const auto& p : found) {
      PARLEY_FUZZ_CHECK(p.path.starts_with("arguments"));
      PARLEY_FUZZ_CHECK(!p.message.empty());
    }
    return;
  }
  const json filled = caps::with_defaults(schema, args);
  PARLEY_FUZZ_CHECK(caps::validate(schema, filled).ok());
  PARLEY_FUZZ_CHECK(caps::with_defaults(schema, filled) == filled);
}

void test_one_input(const uint8_t* data, size_t size) {
  const Builtins& b = builtins();
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  const std::string_view line = input.substr(0, newline);
  const std::string_view json_text =
      newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);

  // "/name rest" as the command router reads it.
  const caps::Capability* capability = nullptr;
  std::string name;
  std::string_view rest;
  if (line.starts_with('/')) {
    std::string_view view = line.substr(1);
    const size_t space = view.find_first_of(" \t\n");
    name = std::string(view.substr(0, space));
    rest = space == std::string_view::npos ? std::string_view() : view.substr(space + 1);
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
    while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\r')) rest.remove_suffix(1);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!rest.empty()) {
      const size_t end = rest.find_first_of(" \t\n");
      std::string two = name + ' ' + std::string(rest.substr(0, end));
      for (char& c : two) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (b.registry.find_command(two) != nullptr) {
        name = std::move(two);
        rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
        while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) {
          rest.remove_prefix(1);
        }
      }
    }
    capability = b.registry.find_command(name);
  }
  if (capability == nullptr) {
    if (size < 2) return;
    capability = b.all[data[0] % b.all.size()];
    const auto commands = capability->commands();
    if (commands.empty()) return;
    name = commands[data[1] % commands.size()].name;
    rest = line.substr(std::min<size_t>(2, line.size()));
  }
  const json& schema = b.parameters[index_of(b, capability)];

  // What the model sends.
  if (!json_text.empty()) {
    const json args = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
    if (!args.is_discarded()) check_validation(schema, args);
  }

  // What a user types.
  const auto parsed = capability->parse_command(name, rest);
  if (!parsed.ok()) {
    PARLEY_FUZZ_CHECK(parsed.error().code == ErrorCode::invalid_argument);
    PARLEY_FUZZ_CHECK(parsed.error().message.starts_with(std::string(capability->name())));
    return;
  }
  PARLEY_FUZZ_CHECK(parsed->is_object());
  check_validation(schema, *parsed);
  // Text as a channel delivers it (UTF-8, no NUL: validate() refuses those, rightly).
  const bool text = !parley::invalid_utf8_at(rest) && rest.find('\0') == std::string_view::npos;
  if (rest.size() <= 80 && text) {
    auto st = caps::validate(schema, *parsed);
    // decisions.cpp leaves a satisfaction's range to the schema on purpose (its test says so).
    if (!st.ok() && capability->name() == "decisions" &&
        st.error().message.starts_with("arguments.satisfaction: ")) {
      st = {};
    }
    if (!st.ok()) {
      std::fprintf(stderr, "/%s gave %s: %s\n", name.c_str(),
                   parsed->dump(-1, ' ', false, json::error_handler_t::replace).c_str(),
                   st.error().message.c_str());
    }
    PARLEY_FUZZ_CHECK(st.ok());
  }
}

}  // namespace

PARLEY_FUZZ_MAIN(test_one_input)
