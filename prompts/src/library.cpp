#include "parley/prompts/library.h"

#include <fmt/format.h>

#include <algorithm>

#include "defaults_embedded.h"
#include "parley/base/text.h"
#include "parley/prompts/text.h"

namespace parley::prompts {

std::span<const EmbeddedFile> builtin_defaults() { return detail::embedded_defaults(); }

namespace {

using storage::Connection;
using storage::WriteAck;

constexpr const char* kActiveSql =
    "SELECT p.active_version, h.text FROM prompts p JOIN prompt_history h "
    "ON h.prompt_name = p.name AND h.version = p.active_version WHERE p.name = ?";
constexpr const char* kNextVersionSql =
    "SELECT coalesce(max(version), 0) + 1 FROM prompt_history WHERE prompt_name = ?";
constexpr const char* kInsertVersionSql =
    "INSERT INTO prompt_history(prompt_name, version, text, author, reason, created_at) "
    "VALUES (?,?,?,?,?,?)";
constexpr const char* kVersionTextSql =
    "SELECT text FROM prompt_history WHERE prompt_name = ? AND version = ?";
constexpr const char* kUpsertLabelSql =
    "INSERT INTO prompt_labels(prompt_name, label, version, updated_at) VALUES (?,?,?,?) "
    "ON CONFLICT(prompt_name, label) DO UPDATE SET version = excluded.version, "
    "updated_at = excluded.updated_at WHERE version <> excluded.version";  // a no-op writes nothing

struct Active {
  int version = 0;
  std::string text;
};

// ---- helpers that run on the writer, inside the write transaction ----

Result<std::optional<Active>> read_active(Connection& c, std::string_view name) {
  auto st = c.cached(kActiveSql);
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(name);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) return std::optional<Active>();
  return std::optional<Active>(
      Active{static_cast<int>((*st)->column_int64(0)), (*st)->column_text(1)});
}

Result<std::optional<std::string>> read_version_text(Connection& c, std::string_view name,
                                                     int version) {
  auto st = c.cached(kVersionTextSql);
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(name, int64_t{version});
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) return std::optional<std::string>();
  return std::optional<std::string>((*st)->column_text(0));
}

Result<int> insert_version(Connection& c, std::string_view name, std::string_view text,
                           std::string_view author, std::string_view reason, int64_t now) {
  auto next = c.cached(kNextVersionSql);
  if (!next) return fail(std::move(next).error());
  (*next)->bind_all(name);
  auto row = (*next)->step();
  if (!row) return fail(std::move(row).error());
  const auto version = static_cast<int>((*next)->column_int64(0));
  auto ins = c.cached(kInsertVersionSql);
  if (!ins) return fail(std::move(ins).error());
  PARLEY_TRY((*ins)->bind_all(name, int64_t{version}, text, author, reason, now).run());
  return version;
}

Status activate(Connection& c, std::string_view name, int version, int64_t now) {
  // Moving `active` to where it already is writes nothing (no generation bump).
  auto st = c.cached(
      "UPDATE prompts SET active_version = ?1, updated_at = ?2 WHERE name = ?3 "
      "AND active_version <> ?1");
  if (!st) return fail(std::move(st).error());
  return (*st)->bind_all(int64_t{version}, now, name).run();
}

Status create_prompt(Connection& c, std::string_view name, int version, int64_t now,
                     const std::optional<std::string>& default_hash) {
  auto st = c.cached(
      "INSERT INTO prompts(name, active_version, created_at, updated_at, default_hash) "
      "VALUES (?,?,?,?,?)");
  if (!st) return fail(std::move(st).error());
  return (*st)->bind_all(name, int64_t{version}, now, now, default_hash).run();
}

Status upsert_label(Connection& c, std::string_view name, std::string_view label, int version,
                    int64_t now) {
  auto st = c.cached(kUpsertLabelSql);
  if (!st) return fail(std::move(st).error());
  return (*st)->bind_all(name, label, int64_t{version}, now).run();
}

// The newest version of `name` whose text is `text`.
Result<std::optional<int>> find_version_with_text(Connection& c, std::string_view name,
                                                  std::string_view text) {
  auto st = c.cached("SELECT max(version) FROM prompt_history WHERE prompt_name = ? AND text = ?");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(name, text);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  return (*st)->column_opt_int64(0).has_value()
             ? std::optional<int>(static_cast<int>((*st)->column_int64(0)))
             : std::optional<int>();
}

Error unknown_prompt(std::string_view name) {
  return Error{ErrorCode::not_found, fmt::format("unknown prompt '{}'", name)};
}

// Sets `text` as the active version; {version, created}.
Result<WriteAck> set_active_text(Connection& c, std::string_view name, std::string_view text,
                                 std::string_view author, std::string_view reason, bool create,
                                 int64_t now) {
  auto active = read_active(c, name);
  if (!active) return fail(std::move(active).error());
  if (!*active) {
    if (!create) return fail(unknown_prompt(name));
    auto v = insert_version(c, name, text, author, reason, now);
    if (!v) return fail(std::move(v).error());
    PARLEY_TRY(create_prompt(c, name, *v, now, std::nullopt));
    return WriteAck{*v, true};
  }
  if ((*active)->text == text) return WriteAck{(*active)->version, false};
  auto v = insert_version(c, name, text, author, reason, now);
  if (!v) return fail(std::move(v).error());
  PARLEY_TRY(activate(c, name, *v, now));
  return WriteAck{*v, true};
}

Result<SetOutcome> outcome(Result<WriteAck> r) {
  if (!r) return fail(std::move(r).error());
  return SetOutcome{static_cast<int>(r->row_id), r->inserted};
}

}  // namespace

PromptLibrary::PromptLibrary(storage::Store& store, const Clock& clock)
    : store_(store), clock_(clock) {}

namespace {
bool is_identifier(std::string_view s, size_t max) {
  return !s.empty() && s.size() <= max && std::all_of(s.begin(), s.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
  });
}
}  // namespace

Status PromptLibrary::validate_name(std::string_view name) {
  if (is_identifier(name, 64)) return {};
  return fail(ErrorCode::invalid_argument,
              fmt::format("prompt name '{}' must be 1-64 of a-z, 0-9, '_' or '-'", name));
}

Status PromptLibrary::validate_label(std::string_view label) {
  if (is_identifier(label, 32)) return {};
  return fail(ErrorCode::invalid_argument,
              fmt::format("label '{}' must be 1-32 of a-z, 0-9, '_' or '-'", label));
}

Status PromptLibrary::validate_text(std::string_view name, std::string_view text) {
  PARLEY_TRY(validate_name(name));
  if (auto bad = invalid_utf8_at(text)) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("prompt '{}': text is not valid UTF-8 (byte {})", name, *bad));
  }
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return fail(ErrorCode::invalid_argument, fmt::format("prompt '{}': text is empty", name));
  }
  auto parsed = Template::parse(text);
  if (!parsed) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("prompt '{}': {}", name, parsed.error().message));
  }
  return {};
}

Result<SeedReport> PromptLibrary::seed_defaults(std::span<const EmbeddedFile> defaults) {
  for (const auto& d : defaults) {
    if (auto v = validate_text(d.stem, d.text); !v) {
      return fail(ErrorCode::internal,
                  fmt::format("shipped default prompt is invalid: {}", v.error().message));
    }
  }
  const int64_t now = clock_.now_ms();
  auto report = std::make_shared<SeedReport>();
  std::vector<EmbeddedFile> files(defaults.begin(), defaults.end());
  auto r = store_.writes()
               .submit(
                   [report, files, now](Connection& c) -> Result<WriteAck> {
                     *report = SeedReport{};  // apply may be replayed
                     for (const auto& d : files) {
                       const std::string hash = content_hash(d.text);
                       auto st = c.cached("SELECT default_hash FROM prompts WHERE name = ?");
                       if (!st) return fail(std::move(st).error());
                       (*st)->bind_all(d.stem);
                       auto row = (*st)->step();
                       if (!row) return fail(std::move(row).error());
                       if (!*row) {
                         auto v = insert_version(c, d.stem, d.text, kDefaultsAuthor,
                                                 "shipped default", now);
                         if (!v) return fail(std::move(v).error());
                         PARLEY_TRY(create_prompt(c, d.stem, *v, now, hash));
                         report->created.emplace_back(d.stem);
                         continue;
                       }
                       const bool known = !(*st)->column_is_null(0);
                       if (known && (*st)->column_text(0) == hash) continue;

                       auto edited = c.cached(
                           "SELECT count(*) FROM prompt_history WHERE prompt_name = ? AND "
                           "author <> ?");
                       if (!edited) return fail(std::move(edited).error());
                       (*edited)->bind_all(d.stem, kDefaultsAuthor);
                       PARLEY_TRY((*edited)->step());
                       const bool operator_edited = (*edited)->column_int64(0) > 0;
                       if (!operator_edited) {
                         auto a = set_active_text(c, d.stem, d.text, kDefaultsAuthor,
                                                  "shipped default changed", false, now);
                         if (!a) return fail(std::move(a).error());
                         if (a->inserted) report->updated.emplace_back(d.stem);
                       } else {
                         auto existing = find_version_with_text(c, d.stem, d.text);
                         if (!existing) return fail(std::move(existing).error());
                         int version = 0;
                         if (*existing) {
                           version = **existing;
                         } else {
                           auto v = insert_version(c, d.stem, d.text, kDefaultsAuthor,
                                                   "shipped default changed (upstream)", now);
                           if (!v) return fail(std::move(v).error());
                           version = *v;
                         }
                         PARLEY_TRY(upsert_label(c, d.stem, kUpstream, version, now));
                         report->upstream.emplace_back(d.stem);
                       }
                       auto mark = c.cached("UPDATE prompts SET default_hash = ? WHERE name = ?");
                       if (!mark) return fail(std::move(mark).error());
                       PARLEY_TRY((*mark)->bind_all(hash, d.stem).run());
                     }
                     return WriteAck{0, true};
                   },
                   {}, "seed default prompts")
               .get();
  if (!r) return fail(std::move(r).error());
  return *report;
}

Result<SetOutcome> PromptLibrary::set(std::string_view name, std::string_view text,
                                      std::string_view author, std::string_view reason,
                                      bool create) {
  PARLEY_TRY(validate_text(name, text));
  const int64_t now = clock_.now_ms();
  return outcome(
      store_.writes()
          .submit([n = std::string(name), t = std::string(text), a = std::string(author),
                   why = std::string(reason), create,
                   now](Connection& c) { return set_active_text(c, n, t, a, why, create, now); },
                  {}, "set prompt")
          .get());
}

Result<SetOutcome> PromptLibrary::rollback(std::string_view name, int to, std::string_view author,
                                           std::string_view reason) {
  PARLEY_TRY(validate_name(name));
  const int64_t now = clock_.now_ms();
  return outcome(store_.writes()
                     .submit(
                         [n = std::string(name), a = std::string(author), r = std::string(reason),
                          to, now](Connection& c) -> Result<WriteAck> {
                           auto active = read_active(c, n);
                           if (!active) return fail(std::move(active).error());
                           if (!*active) return fail(unknown_prompt(n));
                           auto text = read_version_text(c, n, to);
                           if (!text) return fail(std::move(text).error());
                           if (!*text) {
                             return fail(ErrorCode::not_found,
                                         fmt::format("prompt '{}' has no version {}", n, to));
                           }
                           const std::string why =
                               r.empty() ? fmt::format("rollback to version {}", to) : r;
                           return set_active_text(c, n, **text, a, why, false, now);
                         },
                         {}, "rollback prompt")
                     .get());
}

Status PromptLibrary::label(std::string_view name, std::string_view label, int version) {
  PARLEY_TRY(validate_name(name));
  if (label != kActive) PARLEY_TRY(validate_label(label));
  const int64_t now = clock_.now_ms();
  auto r = store_.writes()
               .submit(
                   [n = std::string(name), l = std::string(label), version,
                    now](Connection& c) -> Result<WriteAck> {
                     auto active = read_active(c, n);
                     if (!active) return fail(std::move(active).error());
                     if (!*active) return fail(unknown_prompt(n));
                     auto text = read_version_text(c, n, version);
                     if (!text) return fail(std::move(text).error());
                     if (!*text) {
                       return fail(ErrorCode::not_found,
                                   fmt::format("prompt '{}' has no version {}", n, version));
                     }
                     if (l == kActive) {
                       PARLEY_TRY(activate(c, n, version, now));
                     } else {
                       PARLEY_TRY(upsert_label(c, n, l, version, now));
                     }
                     return WriteAck{version, true};
                   },
                   {}, "label prompt")
               .get();
  if (!r) return fail(std::move(r).error());
  return {};
}

Result<SetOutcome> PromptLibrary::set_label_text(std::string_view name, std::string_view label,
                                                 std::string_view text, std::string_view author,
                                                 std::string_view reason) {
  if (label == kActive) return set(name, text, author, reason, true);
  PARLEY_TRY(validate_text(name, text));
  PARLEY_TRY(validate_label(label));
  const int64_t now = clock_.now_ms();
  return outcome(store_.writes()
                     .submit(
                         [n = std::string(name), l = std::string(label), t = std::string(text),
                          a = std::string(author), r = std::string(reason),
                          now](Connection& c) -> Result<WriteAck> {
                           auto active = read_active(c, n);
                           if (!active) return fail(std::move(active).error());
                           if (!*active) return fail(unknown_prompt(n));
                           auto existing = find_version_with_text(c, n, t);
                           if (!existing) return fail(std::move(existing).error());
                           int version = 0;
                           bool created = false;
                           if (*existing) {
                             version = **existing;
                           } else {
                             auto v = insert_version(c, n, t, a, r, now);
                             if (!v) return fail(std::move(v).error());
                             version = *v;
                             created = true;
                           }
                           PARLEY_TRY(upsert_label(c, n, l, version, now));
                           return WriteAck{version, created};
                         },
                         {}, "label prompt text")
                     .get());
}

// ---- reads ----

Result<std::vector<PromptInfo>> PromptLibrary::list() {
  auto conn = store_.reads().acquire();
  std::vector<PromptInfo> out;
  auto st = conn->cached(
      "SELECT p.name, p.active_version, p.updated_at, h.author FROM prompts p "
      "JOIN prompt_history h ON h.prompt_name = p.name AND h.version = p.active_version "
      "ORDER BY p.name");
  if (!st) return fail(std::move(st).error());
  for (;;) {
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    PromptInfo info;
    info.name = (*st)->column_text(0);
    info.active_version = static_cast<int>((*st)->column_int64(1));
    info.updated_at = (*st)->column_int64(2);
    info.author = (*st)->column_text(3);
    out.push_back(std::move(info));
  }
  auto labels = conn->cached("SELECT prompt_name, label, version FROM prompt_labels");
  if (!labels) return fail(std::move(labels).error());
  for (;;) {
    auto row = (*labels)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    const std::string name = (*labels)->column_text(0);
    for (auto& info : out) {
      if (info.name == name) {
        info.labels[(*labels)->column_text(1)] = static_cast<int>((*labels)->column_int64(2));
      }
    }
  }
  return out;
}

Result<std::vector<PromptVersion>> PromptLibrary::history(std::string_view name) {
  auto all = list();
  if (!all) return fail(std::move(all).error());
  const auto info =
      std::find_if(all->begin(), all->end(), [&](const PromptInfo& p) { return p.name == name; });
  if (info == all->end()) return fail(unknown_prompt(name));
  auto conn = store_.reads().acquire();
  auto st = conn->cached(
      "SELECT version, text, author, reason, created_at FROM prompt_history "
      "WHERE prompt_name = ? ORDER BY version");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(name);
  std::vector<PromptVersion> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    PromptVersion v;
    v.name = std::string(name);
    v.version = static_cast<int>((*st)->column_int64(0));
    v.text = (*st)->column_text(1);
    v.author = (*st)->column_text(2);
    v.reason = (*st)->column_text(3);
    v.created_at = (*st)->column_int64(4);
    if (v.version == info->active_version) v.labels.emplace_back(kActive);
    for (const auto& [l, ver] : info->labels) {
      if (ver == v.version) v.labels.push_back(l);
    }
    out.push_back(std::move(v));
  }
  return out;
}

Result<PromptVersion> PromptLibrary::get(std::string_view name, std::optional<int> version,
                                         const std::optional<std::string>& label) {
  auto versions = history(name);
  if (!versions) return fail(std::move(versions).error());
  const std::string want_label = label.value_or(version ? "" : std::string(kActive));
  for (auto& v : *versions) {
    const bool hit =
        version ? v.version == *version
                : std::find(v.labels.begin(), v.labels.end(), want_label) != v.labels.end();
    if (hit) return std::move(v);
  }
  if (version) {
    return fail(ErrorCode::not_found, fmt::format("prompt '{}' has no version {} (versions 1..{})",
                                                  name, *version, versions->size()));
  }
  return fail(ErrorCode::not_found, fmt::format("prompt '{}' has no label '{}'", name, want_label));
}

Result<std::string> PromptLibrary::diff(std::string_view name, int a, int b) {
  auto va = get(name, a);
  if (!va) return fail(std::move(va).error());
  auto vb = get(name, b);
  if (!vb) return fail(std::move(vb).error());
  return unified_diff(va->text, vb->text, fmt::format("{} v{}", name, a),
                      fmt::format("{} v{}", name, b));
}

Result<std::vector<PromptStatus>> PromptLibrary::status() {
  auto all = list();
  if (!all) return fail(std::move(all).error());
  std::vector<PromptStatus> out;
  for (const auto& info : *all) {
    auto versions = history(info.name);
    if (!versions) return fail(std::move(versions).error());
    PromptStatus s;
    s.name = info.name;
    s.active_version = info.active_version;
    std::string active_text;
    for (const auto& v : *versions) {
      if (v.author != kDefaultsAuthor) s.edited = true;
      if (v.version == info.active_version) active_text = v.text;
    }
    if (auto it = info.labels.find(std::string(kUpstream)); it != info.labels.end()) {
      s.upstream_version = it->second;
      for (const auto& v : *versions) {
        if (v.version == it->second) s.upstream_waiting = v.text != active_text;
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

Result<int64_t> PromptLibrary::generation() {
  auto conn = store_.reads().acquire();
  auto st = conn->cached("SELECT value FROM prompt_generation WHERE id = 1");
  if (!st) return fail(std::move(st).error());
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  return *row ? (*st)->column_int64(0) : int64_t{0};
}

Result<std::shared_ptr<const ActivePrompt>> PromptLibrary::active(std::string_view name) {
  auto gen = generation();
  if (!gen) return fail(std::move(gen).error());
  return active_at(name, *gen);
}

Result<std::vector<std::shared_ptr<const ActivePrompt>>> PromptLibrary::active_all(
    std::initializer_list<std::string_view> names) {
  auto gen = generation();
  if (!gen) return fail(std::move(gen).error());
  std::vector<std::shared_ptr<const ActivePrompt>> out;
  out.reserve(names.size());
  for (const std::string_view name : names) {
    auto prompt = active_at(name, *gen);
    if (!prompt) return fail(std::move(prompt).error());
    out.push_back(std::move(*prompt));
  }
  return out;
}

Result<std::shared_ptr<const ActivePrompt>> PromptLibrary::active_at(std::string_view name,
                                                                     int64_t gen) {
  {
    std::lock_guard lock(mu_);
    if (gen != cached_generation_) {
      active_.clear();
      cached_generation_ = gen;
    }
    if (auto it = active_.find(std::string(name)); it != active_.end()) return it->second;
  }
  auto v = get(name);
  if (!v) return fail(std::move(v).error());
  auto parsed = Template::parse(v->text);
  if (!parsed) {
    return fail(ErrorCode::invalid_argument, fmt::format("prompt '{}' version {}: {}", name,
                                                         v->version, parsed.error().message));
  }
  auto prompt = std::make_shared<const ActivePrompt>(
      ActivePrompt{v->name, v->version, std::move(v->text), std::move(*parsed)});
  std::lock_guard lock(mu_);
  // Cache only under the generation it was loaded for; a newer change will reload.
  if (cached_generation_ == gen) active_[std::string(name)] = prompt;
  return prompt;
}

}  // namespace parley::prompts
