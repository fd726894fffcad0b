// Template: a prompt text with {{name}} variables, parsed once (per prompt version) into
// literal and variable parts, rendered in one pass per turn.
//
// Parsing rejects a variable the renderer does not know, naming it and its line, so that
// rendering never silently leaves a blank. Value type; immutable after parse, so a parsed
// Template may be rendered from any number of threads.
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "parley/base/result.h"

namespace parley::prompts {

// The variables a prompt may use (user.name, channel, now, capabilities, memories, summary).
const std::set<std::string, std::less<>>& known_variables();

class Template {
 public:
  using Values = std::map<std::string, std::string, std::less<>>;

  // Errors (invalid_argument): an unknown variable, an empty or unterminated {{ }}, each with
  // its line number.
  static Result<Template> parse(
      std::string_view text, const std::set<std::string, std::less<>>& known = known_variables());

  // Every variable must have a value; a missing one is an error naming it (never a blank).
  [[nodiscard]] Result<std::string> render(const Values& values) const;

  // Variables used, in order of first use.
  [[nodiscard]] std::vector<std::string> variables() const;

 private:
  struct Part {
    bool is_variable;
    std::string text;  // literal text, or the variable's name
  };
  std::vector<Part> parts_;
  size_t literal_bytes_ = 0;
};

}  // namespace parley::prompts
