// prompt_template_fuzz: a libFuzzer target for prompt templates (prompts/template.h) as an
// operator writes them (`parley prompt set`, an import) and as every turn renders them
// (render.h's values, with the user's time zone), and the prompt table's checks of a text
// (PromptLibrary::validate_text) and its unified diff.
//
// The whole input is the template's text, so the seed corpus (tests/fuzz/corpus/
// prompt_template/) holds the shipped prompts/defaults/*.md. A FuzzedDataProvider over the same
// bytes (it takes them from the end) chooses the user's time zone (a known one or a few bytes
// of the input) and where the text is cut for the diff.
//
// Invariants (a violation aborts, and libFuzzer keeps the input):
// - parse() succeeds, or fails with invalid_argument "line N: …", N within the text's lines;
//   an unknown variable is named in the error, and it is indeed not a known one.
// - A template that parsed renders with the values of every known variable, never fails, and
//   gives what a naive substitution of the text gives (a value holding "{{now}}" is not
//   expanded again); its variables() are known ones, in order of first use; rendering without
//   the value of one of them fails naming it.
// - validate_text accepts exactly the texts that are valid UTF-8, not blank, and parse.
// - format_now never throws: a zone it does not know is invalid_argument; format_short falls
//   back to UTC; values_for agrees with format_now.
// - unified_diff of a text with itself is empty, and otherwise starts with the two names.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "parley/base/text.h"
#include "parley/prompts/library.h"
#include "parley/prompts/render.h"
#include "parley/prompts/template.h"
#include "parley/prompts/text.h"

namespace {

namespace prompts = parley::prompts;
using parley::ErrorCode;

using parley::fuzz::violated;

std::string value_of(const std::string& name) { return "<" + name + "={{now}}>"; }

std::string_view trim_blanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The substitution done the naive way; nullopt where the text does not parse. Shares no code
// with Template.
std::optional<std::string> naive(std::string_view text, std::vector<std::string>* used) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t open = text.find("{{", pos);
    if (open == std::string_view::npos) break;
    const size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) return std::nullopt;
    out += text.substr(pos, open - pos);
    const std::string name(trim_blanks(text.substr(open + 2, close - open - 2)));
    if (prompts::known_variables().count(name) == 0) return std::nullopt;
    if (std::find(used->begin(), used->end(), name) == used->end()) used->push_back(name);
    out += value_of(name);
    pos = close + 2;
  }
  if (pos < text.size()) out += text.substr(pos);
  return out;
}

void check_template(std::string_view text) {
  const size_t lines = 1 + static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
  const auto t = prompts::Template::parse(text);
  std::vector<std::string> used;
  const auto expected = naive(text, &used);
  if (!t) {
    PARLEY_FUZZ_CHECK(t.error().code == ErrorCode::invalid_argument);
    const std::string& m = t.error().message;
    PARLEY_FUZZ_CHECK(m.starts_with("line "));
    const size_t line = std::strtoul(m.c_str() + 5, nullptr, 10);
    PARLEY_FUZZ_CHECK(line >= 1 && line <= lines);
    PARLEY_FUZZ_CHECK(!expected);
    constexpr std::string_view kUnknown = "unknown template variable '";
    if (const size_t at = m.find(kUnknown); at != std::string::npos) {
      const std::string name = m.substr(at + kUnknown.size(), m.size() - at - kUnknown.size() - 1);
      PARLEY_FUZZ_CHECK(prompts::known_variables().count(name) == 0);
      PARLEY_FUZZ_CHECK(text.find(name) != std::string_view::npos);
    }
    return;
  }
  PARLEY_FUZZ_CHECK(expected.has_value());
  PARLEY_FUZZ_CHECK(t->variables() == used);
  prompts::Template::Values values;
  for (const auto& name : prompts::known_variables()) values[name] = value_of(name);
  const auto rendered = t->render(values);
  PARLEY_FUZZ_CHECK(rendered.ok());
  PARLEY_FUZZ_CHECK(*rendered == *expected);
  for (const auto& name : used) {
    auto without = values;
    without.erase(name);
    const auto missing = t->render(without);
    PARLEY_FUZZ_CHECK(!missing.ok());
    PARLEY_FUZZ_CHECK(missing.error().message.find("'" + name + "'") != std::string::npos);
  }
}

void check_validate(std::string_view text) {
  const auto v = prompts::PromptLibrary::validate_text("fuzz", text);
  const bool expected = !parley::invalid_utf8_at(text) &&
                        text.find_first_not_of(" \t\r\n") != std::string_view::npos &&
                        prompts::Template::parse(text).ok();
  PARLEY_FUZZ_CHECK(v.ok() == expected);
  if (!v.ok()) {
    PARLEY_FUZZ_CHECK(v.error().code == ErrorCode::invalid_argument);
    PARLEY_FUZZ_CHECK(v.error().message.starts_with("prompt 'fuzz': "));
  }
}

void check_zone(const std::string& zone) {
  const auto now = std::chrono::system_clock::time_point(std::chrono::hours(24 * 20'000));
  const auto formatted = prompts::format_now(now, zone);
  if (!formatted) PARLEY_FUZZ_CHECK(formatted.error().code == ErrorCode::invalid_argument);
  PARLEY_FUZZ_CHECK(!prompts::format_short(now, zone, false).empty());
  PARLEY_FUZZ_CHECK(!prompts::format_short(now, zone, true).empty());
  prompts::RenderContext ctx;
  ctx.user_timezone = zone;
  ctx.now = now;
  const auto values = prompts::values_for(ctx);
  PARLEY_FUZZ_CHECK(values.ok() == formatted.ok());
  if (values.ok()) {
    PARLEY_FUZZ_CHECK(values->at("now") == *formatted);
    PARLEY_FUZZ_CHECK(values->size() == prompts::known_variables().size());
  }
}

void check_diff(std::string_view a, std::string_view b) {
  PARLEY_FUZZ_CHECK(prompts::unified_diff(a, a, "a", "b").empty());
  const std::string d = prompts::unified_diff(a, b, "v1", "v2");
  PARLEY_FUZZ_CHECK(d.empty() == (a == b));
  if (!d.empty()) PARLEY_FUZZ_CHECK(d.starts_with("--- v1\n+++ v2\n"));
}

void test_one_input(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_template(text);
  check_validate(text);

  FuzzedDataProvider fdp(data, size);
  static const char* const kZones[] = {"UTC", "Europe/Lisbon", "America/Sao_Paulo",
                                       "Asia/Kathmandu", "Etc/GMT+12"};
  std::string zone;
  if (fdp.ConsumeBool()) {
    zone = kZones[fdp.ConsumeIntegralInRange<size_t>(0, std::size(kZones) - 1)];
  } else {
    zone = fdp.ConsumeRandomLengthString(48);
  }
  check_zone(zone);
  const size_t cut = fdp.ConsumeIntegralInRange<size_t>(0, size);
  if (size <= 4096) check_diff(text.substr(0, cut), text);
}

}  // namespace

PARLEY_FUZZ_MAIN(test_one_input)
