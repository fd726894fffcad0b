#include "cli/memory_commands.h"

#include <fmt/format.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "app/exit_codes.h"
#include "parley/base/time_format.h"
#include "parley/storage/store.h"

namespace parley::bot::cli {

namespace {

using nlohmann::json;

constexpr size_t kMaxImportText = 1000;
constexpr size_t kExportPage = 1u << 20;

json memory_json(const storage::Memory& m) {
  json j = {{"id", m.id},
            {"kind", m.kind},
            {"text", m.content},
            {"importance", m.importance},
            {"confidence", m.confidence},
            {"source", m.source},
            {"created_at", iso_utc(m.created_at)},
            {"updated_at", iso_utc(m.updated_at)}};
  j["external_id"] = m.external_id.empty() ? json() : json(m.external_id);
  if (!m.tags.empty()) j["tags"] = m.tags;
  if (m.event_at) j["event_at"] = iso_utc(*m.event_at);
  if (m.superseded_by != 0) {
    j["superseded_by"] = m.superseded_by;
    if (m.valid_to) j["valid_to"] = iso_utc(*m.valid_to);
  }
  return j;
}

std::string memory_line(const storage::Memory& m) {
  std::string line = fmt::format("#{:<6} {:<10} {}", m.id, m.kind, m.content);
  if (m.superseded_by != 0) line += fmt::format("  (superseded by #{})", m.superseded_by);
  return line;
}

// --user: "#N", "CHANNEL:ID", or a console login; created when `create` (an import seeds a user
// parley has not met yet).
Result<int64_t> find_user(storage::Store& store, const std::string& who, bool create) {
  if (who.empty()) return fail(ErrorCode::invalid_argument, "--user is required");
  if (who[0] == '#') {
    int64_t id = 0;
    const char* end = who.data() + who.size();
    auto [p, ec] = std::from_chars(who.data() + 1, end, id);
    if (ec != std::errc() || p != end || id <= 0) {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("--user {}: expected #NUMBER, CHANNEL:ID or a console login", who));
    }
    auto conn = store.reads().acquire();
    auto st = conn->cached("SELECT 1 FROM users WHERE id = ?");
    if (!st) return fail(std::move(st).error());
    (*st)->bind_all(id);
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) return fail(ErrorCode::not_found, fmt::format("no user {}", who));
    return id;
  }
  const size_t colon = who.find(':');
  const std::string channel = colon == std::string::npos ? "console" : who.substr(0, colon);
  const std::string external = colon == std::string::npos ? who : who.substr(colon + 1);
  if (channel.empty() || external.empty()) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("--user {}: expected #NUMBER, CHANNEL:ID or a console login", who));
  }
  auto id = store.directory().find_user(channel, external);
  if (!id && id.error().code == ErrorCode::not_found && create) {
    auto made = store.directory().ensure_user(channel, external, external).get();
    if (!made) return fail(std::move(made).error());
    return made->row_id;
  }
  if (!id && id.error().code == ErrorCode::not_found) {
    return fail(ErrorCode::not_found, fmt::format("no user {}:{}", channel, external));
  }
  return id;
}

// One line of an import file, checked; the problem names FILE:LINE.
Result<storage::NewMemory> import_line(const std::string& line, const std::string& where,
                                       int64_t user_id) {
  const json j = json::parse(line, nullptr, false);
  if (!j.is_object()) return fail(ErrorCode::invalid_argument, where + ": not a JSON object");
  for (const auto& [key, _] : j.items()) {
    if (key != "text" && key != "kind" && key != "event_at" && key != "importance" &&
        key != "external_id") {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("{}: unknown key \"{}\" (expected text, kind, event_at, "
                              "importance, external_id)",
                              where, key));
    }
  }
  storage::NewMemory m;
  m.user_id = user_id;
  m.source = "import";
  m.importance = 3;
  if (!j.contains("text") || !j["text"].is_string() || j["text"].get<std::string>().empty()) {
    return fail(ErrorCode::invalid_argument, where + ": \"text\" must be a non-empty string");
  }
  m.content = j["text"].get<std::string>();
  if (m.content.size() > kMaxImportText) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("{}: \"text\" is longer than {} bytes", where, kMaxImportText));
  }
  if (j.contains("kind")) {
    if (!j["kind"].is_string() || !storage::memory_kind_known(j["kind"].get<std::string>())) {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("{}: \"kind\" {} is not one of fact, preference, event, emotion, "
                              "goal, habit, decision, identity, procedure, insight",
                              where, j["kind"].dump()));
    }
    m.kind = j["kind"].get<std::string>();
  }
  if (j.contains("event_at")) {
    const auto at =
        j["event_at"].is_string() ? parse_iso_utc(j["event_at"].get<std::string>()) : std::nullopt;
    if (!at) {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("{}: \"event_at\" {} is not an ISO 8601 date or time "
                              "(2026-11-02, 2026-11-02T18:30:00Z)",
                              where, j["event_at"].dump()));
    }
    m.event_at = at;
  }
  if (j.contains("importance")) {
    if (!j["importance"].is_number_integer() || j["importance"].get<int64_t>() < 1 ||
        j["importance"].get<int64_t>() > 5) {
      return fail(ErrorCode::invalid_argument,
                  where + ": \"importance\" must be an integer from 1 to 5");
    }
    m.importance = j["importance"].get<int>();
  }
  if (j.contains("external_id")) {
    if (!j["external_id"].is_string() || j["external_id"].get<std::string>().empty()) {
      return fail(ErrorCode::invalid_argument,
                  where + ": \"external_id\" must be a non-empty string");
    }
    m.external_id = j["external_id"].get<std::string>();
  }
  return m;
}

}  // namespace

MemoryCommands::MemoryCommands(CLI::App& app) {
  memory_ = app.add_subcommand("memory", "what parley remembers about a user");
  memory_->require_subcommand(1);
  memory_->fallthrough();  // --user and --json after the subcommand too
  memory_->add_option("--user", user_, "#N, CHANNEL:ID (discord:…, email:…) or a console login");
  memory_->add_flag("--json", json_, "print JSON (list, show, recall, forget)");
  list_ = memory_->add_subcommand("list", "the user's current memories, newest first");
  list_->add_option("--limit", limit_, "at most this many")->check(CLI::PositiveNumber);
  show_ = memory_->add_subcommand("show", "one memory and every change to it");
  show_->add_option("ID", id_, "the memory's number")->required()->check(CLI::PositiveNumber);
  recall_ = memory_->add_subcommand("recall", "the memories a turn would recall for QUERY");
  recall_->add_option("QUERY", query_, "what is asked")->required();
  recall_->add_option("--limit", limit_, "at most this many (default 10)")
      ->check(CLI::PositiveNumber);
  recall_->add_flag("--history", history_, "superseded memories too");
  import_ =
      memory_->add_subcommand("import",
                              "JSON Lines {\"text\", \"kind\"?, \"event_at\"?, \"importance\"?, "
                              "\"external_id\"?}: a known external_id updates its memory");
  import_->add_option("FILE", file_, "the file")->required();
  export_ = memory_->add_subcommand("export", "the user's current memories as JSON Lines");
  forget_ = memory_->add_subcommand("forget", "forget a memory (purged after the grace period)");
  forget_->add_option("ID", id_, "the memory's number")->required()->check(CLI::PositiveNumber);
}

int MemoryCommands::run(const config::Config& cfg) {
  if (!std::filesystem::exists(cfg.storage.path)) {
    fmt::print(stderr, "parley: no database at {} (start parley once to create it)\n",
               cfg.storage.path.string());
    return app::kExitBadInput;
  }
  auto opened = storage::Store::open(cfg.storage);
  if (!opened) return app::report_error(opened.error());
  storage::Store& store = **opened;
  auto& memories = store.memories();

  if (show_->parsed()) {
    auto m = memories.get(id_);
    if (!m) return app::report_error(m.error());
    auto events = memories.events_for_user((*m)->user_id, 10'000);
    if (!events) return app::report_error(events.error());
    json j = memory_json(**m);
    j["user"] = (*m)->user_id;
    j["events"] = json::array();
    std::string text = memory_line(**m) + "\n";
    for (auto it = events->rbegin(); it != events->rend(); ++it) {
      if (it->memory_id != id_) continue;
      json e = {{"op", it->op}, {"at", iso_utc(it->created_at)}, {"source", it->source}};
      if (it->old_text) e["old_text"] = *it->old_text;
      if (it->new_text) e["new_text"] = *it->new_text;
      if (!it->reason.empty()) e["reason"] = it->reason;
      if (!it->model.empty()) e["model"] = it->model;
      text += fmt::format("  {} {:<9} {}{}\n", utc_minute(it->created_at), it->op,
                          it->new_text.value_or(it->old_text.value_or("")),
                          it->reason.empty() ? "" : " (" + it->reason + ")");
      j["events"].push_back(std::move(e));
    }
    fmt::print("{}", json_ ? j.dump(2) + "\n" : text);
    return app::kExitOk;
  }

  auto user = find_user(store, user_, import_->parsed());
  if (!user) {
    fmt::print(stderr, "parley: memory: {}\n", user.error().message);
    return app::kExitBadInput;
  }

  if (recall_->parsed()) {
    storage::RecallRequest r;
    r.user_id = *user;
    r.query = query_;
    r.limit = limit_;
    r.now_ms = SystemClock::instance().now_ms();
    r.include_superseded = history_;
    auto hits = memories.recall_ranked(r);
    if (!hits) return app::report_error(hits.error());
    json out = json::array();
    for (const auto& h : *hits) {
      json j = memory_json(*h.memory);
      j["score"] = h.score;
      out.push_back(std::move(j));
      if (!json_) fmt::print("{:.3f}  {}\n", h.score, memory_line(*h.memory));
    }
    if (json_) fmt::print("{}\n", out.dump(2));
    return app::kExitOk;
  }

  if (list_->parsed() || export_->parsed()) {
    auto found = memories.list_for_user(*user, export_->parsed() ? kExportPage : limit_);
    if (!found) return app::report_error(found.error());
    json out = json::array();
    for (const auto& m : *found) {
      if (export_->parsed()) {
        fmt::print("{}\n", memory_json(*m).dump());
      } else if (json_) {
        out.push_back(memory_json(*m));
      } else {
        fmt::print("{}\n", memory_line(*m));
      }
    }
    if (list_->parsed() && json_) fmt::print("{}\n", out.dump(2));
    return app::kExitOk;
  }

  if (forget_->parsed()) {
    auto done = std::make_shared<std::promise<Result<storage::WriteAck>>>();
    auto f = done->get_future();
    memories.remove_for_user(
        *user, id_, [done](Result<storage::WriteAck> r) { done->set_value(std::move(r)); },
        "forgotten by the operator");
    auto r = f.get();
    if (!r) {
      fmt::print(stderr, "parley: memory: {} has no memory #{}\n", user_, id_);
      return app::kExitBadInput;
    }
    fmt::print("{}\n", json_ ? json{{"forgotten", id_}}.dump() : fmt::format("forgot #{}", id_));
    return app::kExitOk;
  }

  // import FILE: every line checked first; one bad line and nothing is imported.
  std::ifstream in(file_);
  if (!in) {
    fmt::print(stderr, "parley: memory import: cannot read {}\n", file_);
    return app::kExitBadInput;
  }
  std::vector<storage::NewMemory> rows;
  std::vector<std::string> problems;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto m = import_line(line, fmt::format("{}:{}", file_, number), *user);
    if (m) {
      rows.push_back(std::move(*m));
    } else {
      problems.push_back(m.error().message);
    }
  }
  if (!problems.empty()) {
    for (const auto& p : problems) fmt::print(stderr, "parley: memory import: {}\n", p);
    fmt::print(stderr, "parley: memory import: nothing imported ({} bad line(s))\n",
               problems.size());
    return app::kExitBadInput;
  }
  size_t added = 0;
  size_t kept = 0;
  std::vector<std::future<Result<storage::WriteAck>>> acks;
  acks.reserve(rows.size());
  for (auto& m : rows) acks.push_back(memories.add(std::move(m)));
  for (auto& a : acks) {
    auto r = a.get();
    if (!r) return app::report_error(r.error());
    (r->inserted ? added : kept)++;
  }
  fmt::print("imported {} line(s): {} new, {} updated or already known\n", rows.size(), added,
             kept);
  return app::kExitOk;
}

}  // namespace parley::bot::cli
