#include "cli/prompt_commands.h"

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/exit_codes.h"
#include "parley/base/time_format.h"
#include "parley/base/yaml_reader.h"
#include "parley/prompts/library.h"

namespace parley::bot::cli {

namespace {

using nlohmann::json;
using prompts::PromptLibrary;

constexpr const char* kIndexFile = "prompts.yaml";

Result<std::string> read_text_file(const std::string& path) {
  if (path == "-") {
    std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    return text;
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return fail(ErrorCode::invalid_argument, fmt::format("cannot read {}: not a file", path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(ErrorCode::invalid_argument, fmt::format("cannot read {}", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status write_text_file(const std::filesystem::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return fail(ErrorCode::unavailable, fmt::format("cannot write {}", path.string()));
  return {};
}

json version_json(const prompts::PromptVersion& v, bool with_text) {
  json j = {{"name", v.name},     {"version", v.version},       {"author", v.author},
            {"reason", v.reason}, {"created_at", v.created_at}, {"labels", v.labels}};
  if (with_text) j["text"] = v.text;
  return j;
}

std::string author_or_default(const std::string& author) {
  if (!author.empty()) return author;
  const char* user = std::getenv("USER");  // NOLINT(concurrency-mt-unsafe): CLI start-up
  return user != nullptr && *user != '\0' ? user : "operator";
}

void print_outcome(bool json_out, std::string_view name, const prompts::SetOutcome& o,
                   std::string_view what) {
  if (json_out) {
    std::cout << json{{"name", name}, {"version", o.version}, {"created", o.created}}.dump(2)
              << "\n";
  } else if (o.created) {
    fmt::print("{}: version {} created{} (active)\n", name, o.version, what);
  } else {
    fmt::print("{}: unchanged — the text equals active version {}; nothing created\n", name,
               o.version);
  }
}

// Runs `sh -c script parley-edit arg`, waiting for it; returns its exit status (-1 when it
// could not run or was killed).
int run_shell(const std::string& script, const std::string& arg) {
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    execlp("sh", "sh", "-c", script.c_str(), "parley-edit", arg.c_str(),
           static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Runs $VISUAL or $EDITOR on a file holding `text`; returns the edited text.
Result<std::string> run_editor(std::string_view name, const std::string& text) {
  // NOLINTBEGIN(concurrency-mt-unsafe): the CLI runs one command on one thread
  const char* editor = std::getenv("VISUAL");
  if (editor == nullptr || *editor == '\0') editor = std::getenv("EDITOR");
  // NOLINTEND(concurrency-mt-unsafe)
  if (editor == nullptr || *editor == '\0') {
    return fail(ErrorCode::invalid_argument, "set $EDITOR (or $VISUAL) to edit a prompt");
  }
  std::string dir_template =
      (std::filesystem::temp_directory_path() / "parley-edit-XXXXXX").string();
  if (mkdtemp(dir_template.data()) == nullptr) {
    return fail(ErrorCode::unavailable, "cannot create a temporary directory");
  }
  const std::filesystem::path dir = dir_template;
  const auto file = dir / (std::string(name) + ".md");
  auto cleanup = [&] {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  };
  if (auto w = write_text_file(file, text); !w) {
    cleanup();
    return fail(std::move(w).error());
  }
  // As git does: the shell runs the editor command as written (it may carry arguments and
  // quotes, "code --wait"), with the file as "$1" — never pasted into the command text.
  const std::string script = std::string(editor) + " \"$1\"";
  const int status = run_shell(script, file.string());
  if (status != 0) {
    cleanup();
    return fail(ErrorCode::cancelled,
                fmt::format("the editor ({}) failed; nothing changed", editor));
  }
  auto edited = read_text_file(file.string());
  cleanup();
  return edited;
}

struct ExportEntry {
  std::string name;
  std::string file;
  std::map<std::string, std::string> labels;  // label → file
};

using ExportContents = std::vector<std::pair<ExportEntry, std::map<std::string, std::string>>>;

// Reads and checks an export's index and every file it names; writes nothing. Every problem
// is reported (FILE:LINE:COLUMN: key: …), not only the first.
Result<ExportContents> read_export(const std::filesystem::path& dir) {
  const auto index = dir / kIndexFile;
  auto index_text = read_text_file(index.string());
  if (!index_text) {
    return fail(ErrorCode::invalid_argument, fmt::format("cannot read {}", index.string()));
  }
  YamlReader r(index.string());
  const auto document = r.parse(*index_text);
  if (!document) return fail(ErrorCode::invalid_argument, describe_all(r.problems()));
  const YAML::Node& root = *document;
  ExportContents out;
  bool has_list = false;
  auto entry = [&](const YAML::Node& item, const std::string& at) {
    ExportEntry e;
    std::map<std::string, std::string> texts;  // label ("active" too) → text
    // One file of the export: inside the folder, readable, a valid prompt text.
    auto load = [&](const YAML::Node& where, const std::string& key, const std::string& label,
                    const std::string& file) {
      if (file.find('/') != std::string::npos || file.find("..") != std::string::npos) {
        r.problem(where, key, fmt::format("file name '{}' must be inside the export folder", file));
        return;
      }
      auto text = read_text_file((dir / file).string());
      if (!text) {
        r.problem(where, key, text.error().message);
        return;
      }
      if (e.name.empty()) return;  // the name's problem is reported; the text is not checked
      if (auto v = PromptLibrary::validate_text(e.name, *text); !v) {
        r.problem(where, key, fmt::format("{}: {}", file, v.error().message));
        return;
      }
      texts[label] = std::move(*text);
    };
    std::optional<YAML::Node> file_node;
    std::optional<YAML::Node> labels_node;
    r.mapping(item, at,
              {
                  {"name",
                   [&](const YAML::Node& v, const std::string& k) {
                     e.name = r.string(v, k).value_or("");
                     if (e.name.empty()) return;
                     if (auto ok = PromptLibrary::validate_name(e.name); !ok) {
                       r.problem(v, k, ok.error().message);
                       e.name.clear();
                     }
                   }},
                  {"file", [&](const YAML::Node& v, const std::string&) { file_node = v; }},
                  {"labels", [&](const YAML::Node& v, const std::string&) { labels_node = v; }},
              });
    if (!item.IsMap()) return;
    if (e.name.empty() && !item["name"]) {
      r.problem(item, at + ".name", "missing (the prompt's name)");
    }
    if (!file_node) {
      r.problem(item, at + ".file", "missing (the file holding the active text)");
    } else if (auto f = r.string(*file_node, at + ".file")) {
      e.file = *f;
      load(*file_node, at + ".file", std::string(prompts::kActive), e.file);
    }
    if (labels_node && !labels_node->IsNull()) {
      r.named(*labels_node, at + ".labels",
              [&](const std::string& label, const YAML::Node& v, const std::string& k) {
                if (label == prompts::kActive) {
                  r.problem(v, k,
                            "'active' is not a label here: the entry's 'file' is the active text");
                  return;
                }
                if (auto ok = PromptLibrary::validate_label(label); !ok) {
                  r.problem(v, k, ok.error().message);
                  return;
                }
                if (auto f = r.string(v, k)) {
                  e.labels[label] = *f;
                  load(v, k, label, *f);
                }
              });
    }
    out.emplace_back(std::move(e), std::move(texts));
  };
  r.mapping(root, "", {{"prompts", [&](const YAML::Node& v, const std::string& k) {
                          has_list = true;
                          r.sequence(v, k, entry);
                        }}});
  if (!has_list && r.ok()) r.problem(root, "prompts", "missing (the list of exported prompts)");
  if (!r.ok()) return fail(ErrorCode::invalid_argument, describe_all(r.problems()));
  return out;
}

}  // namespace

PromptCommands::PromptCommands(CLI::App& app) {
  prompt_ = app.add_subcommand("prompt", "the versioned prompt table");
  prompt_->require_subcommand(1);
  prompt_->add_flag("--json", json_, "print JSON");
  auto json_flag = [this](CLI::App* c) {
    c->add_flag("--json", json_, "print JSON");
    return c;
  };
  list_ =
      json_flag(prompt_->add_subcommand("list", "name, active version, labels, updated, author"));
  show_ = json_flag(prompt_->add_subcommand("show", "print a prompt's text (active by default)"));
  show_->add_option("NAME", name_)->required();
  auto* show_version = show_->add_option("--version", version_, "version N");
  show_->add_option("--label", label_name_, "the version a label points at")
      ->excludes(show_version);

  set_ = json_flag(prompt_->add_subcommand("set", "store a new active version"));
  set_->add_option("NAME", name_)->required();
  set_->add_option("--file", file_, "the text ('-' reads stdin)")->required();
  set_->add_option("--reason", reason_, "why");
  set_->add_option("--author", author_, "who (default: $USER)");
  set_->add_flag("--create", create_, "create the prompt if it does not exist");

  edit_ = json_flag(prompt_->add_subcommand("edit", "edit the active text in $EDITOR"));
  edit_->add_option("NAME", name_)->required();
  edit_->add_option("--reason", reason_, "why");
  edit_->add_option("--author", author_, "who (default: $USER)");

  history_ = json_flag(prompt_->add_subcommand("history", "every version of a prompt"));
  history_->add_option("NAME", name_)->required();

  diff_ = json_flag(prompt_->add_subcommand("diff", "unified diff of two versions"));
  diff_->add_option("NAME", name_)->required();
  diff_->add_option("A", a_)->required();
  diff_->add_option("B", b_)->required();

  rollback_ = json_flag(prompt_->add_subcommand("rollback", "a new active version equal to N"));
  rollback_->add_option("NAME", name_)->required();
  rollback_->add_option("--to", to_, "the version to go back to")->required();
  rollback_->add_option("--reason", reason_, "why");
  rollback_->add_option("--author", author_, "who (default: $USER)");

  label_ = json_flag(prompt_->add_subcommand("label", "point a label at a version"));
  label_->add_option("NAME", name_)->required();
  label_->add_option("LABEL", label_name_)->required();
  label_->add_option("--version", version_, "version N")->required();

  status_ = json_flag(prompt_->add_subcommand("status", "prompts with an upstream change waiting"));

  export_ =
      json_flag(prompt_->add_subcommand("export", "one file per prompt and label, plus an index"));
  export_->add_option("DIR", dir_)->required();
  import_ = json_flag(prompt_->add_subcommand("import", "import an export (checked first)"));
  import_->add_option("DIR", dir_)->required();
  import_->add_option("--author", author_, "who (default: $USER)");
}

bool PromptCommands::read_only() const {
  return list_->parsed() || show_->parsed() || history_->parsed() || diff_->parsed() ||
         status_->parsed() || export_->parsed();
}

int PromptCommands::run(storage::Store& store) {
  PromptLibrary lib(store);
  if (auto seeded = lib.seed_defaults(); !seeded) return app::report_error(seeded.error());

  if (list_->parsed()) {
    auto all = lib.list();
    if (!all) return app::report_error(all.error());
    if (json_) {
      json out = json::array();
      for (const auto& p : *all) {
        out.push_back({{"name", p.name},
                       {"active_version", p.active_version},
                       {"labels", p.labels},
                       {"updated_at", p.updated_at},
                       {"author", p.author}});
      }
      std::cout << out.dump(2) << "\n";
      return app::kExitOk;
    }
    fmt::print("{:<16} {:>6}  {:<28} {:<17} {}\n", "NAME", "ACTIVE", "LABELS", "UPDATED (UTC)",
               "AUTHOR");
    for (const auto& p : *all) {
      std::string labels;
      for (const auto& [l, v] : p.labels) {
        labels += fmt::format("{}{}=v{}", labels.empty() ? "" : " ", l, v);
      }
      fmt::print("{:<16} {:>6}  {:<28} {:<17} {}\n", p.name, fmt::format("v{}", p.active_version),
                 labels.empty() ? "-" : labels, utc_minute(p.updated_at), p.author);
    }
    return app::kExitOk;
  }

  if (show_->parsed()) {
    std::optional<std::string> label;
    if (!label_name_.empty()) label = label_name_;
    auto v = lib.get(name_, version_, label);
    if (!v) return app::report_error(v.error());
    if (json_) {
      std::cout << version_json(*v, true).dump(2) << "\n";
    } else {
      std::cout << v->text;
    }
    return app::kExitOk;
  }

  if (set_->parsed()) {
    auto text = read_text_file(file_);
    if (!text) return app::report_error(text.error());
    auto o = lib.set(name_, *text, author_or_default(author_), reason_, create_);
    if (!o && o.error().code == ErrorCode::not_found && !create_) {
      return app::report_error(
          Error{ErrorCode::not_found,
                fmt::format("{} (`parley prompt set {} --file {} --create` makes a new one)",
                            o.error().message, name_, file_)});
    }
    if (!o) return app::report_error(o.error());
    print_outcome(json_, name_, *o, "");
    return app::kExitOk;
  }

  if (edit_->parsed()) {
    auto current = lib.get(name_);
    if (!current) return app::report_error(current.error());
    auto edited = run_editor(name_, current->text);
    if (!edited) return app::report_error(edited.error());
    if (*edited == current->text) {
      if (json_) {
        std::cout << json{{"name", name_}, {"version", current->version}, {"created", false}}.dump(
                         2)
                  << "\n";
      } else {
        fmt::print("{}: no change; nothing created\n", name_);
      }
      return app::kExitOk;
    }
    auto o = lib.set(name_, *edited, author_or_default(author_), reason_);
    if (!o) return app::report_error(o.error());
    print_outcome(json_, name_, *o, "");
    return app::kExitOk;
  }

  if (history_->parsed()) {
    auto versions = lib.history(name_);
    if (!versions) return app::report_error(versions.error());
    if (json_) {
      json out = json::array();
      for (const auto& v : *versions) out.push_back(version_json(v, true));
      std::cout << out.dump(2) << "\n";
      return app::kExitOk;
    }
    for (const auto& v : *versions) {
      std::string labels;
      for (const auto& l : v.labels) labels += fmt::format(" [{}]", l);
      fmt::print("v{:<4} {}  {:<12} {}{}\n", v.version, utc_minute(v.created_at), v.author,
                 v.reason.empty() ? "-" : v.reason, labels);
    }
    return app::kExitOk;
  }

  if (diff_->parsed()) {
    auto d = lib.diff(name_, a_, b_);
    if (!d) return app::report_error(d.error());
    if (json_) {
      std::cout << json{{"name", name_}, {"a", a_}, {"b", b_}, {"diff", *d}}.dump(2) << "\n";
    } else {
      std::cout << *d;
    }
    return app::kExitOk;
  }

  if (rollback_->parsed()) {
    auto o = lib.rollback(name_, to_, author_or_default(author_), reason_);
    if (!o) return app::report_error(o.error());
    print_outcome(json_, name_, *o, fmt::format(", equal to version {}", to_));
    return app::kExitOk;
  }

  if (label_->parsed()) {
    if (auto r = lib.label(name_, label_name_, *version_); !r) return app::report_error(r.error());
    if (json_) {
      std::cout << json{{"name", name_}, {"label", label_name_}, {"version", *version_}}.dump(2)
                << "\n";
    } else {
      fmt::print("{}: label {} → version {}\n", name_, label_name_, *version_);
    }
    return app::kExitOk;
  }

  if (status_->parsed()) {
    auto all = lib.status();
    if (!all) return app::report_error(all.error());
    if (json_) {
      json out = json::array();
      for (const auto& s : *all) {
        out.push_back(
            {{"name", s.name},
             {"active_version", s.active_version},
             {"edited", s.edited},
             {"upstream_version", s.upstream_version ? json(*s.upstream_version) : json()},
             {"upstream_waiting", s.upstream_waiting}});
      }
      std::cout << out.dump(2) << "\n";
      return app::kExitOk;
    }
    int waiting = 0;
    for (const auto& s : *all) {
      std::string note = s.edited ? "edited by an operator" : "shipped default";
      if (s.upstream_waiting) {
        ++waiting;
        note += fmt::format("; upstream change waiting as v{} (prompt diff {} {} {})",
                            *s.upstream_version, s.name, s.active_version, *s.upstream_version);
      }
      fmt::print("{:<16} v{:<4} {}\n", s.name, s.active_version, note);
    }
    fmt::print("{} prompt(s) with an upstream change waiting\n", waiting);
    return app::kExitOk;
  }

  if (export_->parsed()) {
    const std::filesystem::path dir = dir_;
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return app::report_error(
          Error{ErrorCode::invalid_argument,
                fmt::format("cannot create {}: {}", dir.string(), ec.message())});
    }
    auto all = lib.list();
    if (!all) return app::report_error(all.error());
    YAML::Emitter index;
    index << YAML::BeginMap << YAML::Key << "prompts" << YAML::Value << YAML::BeginSeq;
    json exported = json::array();
    for (const auto& p : *all) {
      auto active = lib.get(p.name);
      if (!active) return app::report_error(active.error());
      const std::string file = p.name + ".md";
      if (auto w = write_text_file(dir / file, active->text); !w)
        return app::report_error(w.error());
      index << YAML::BeginMap << YAML::Key << "name" << YAML::Value << p.name << YAML::Key << "file"
            << YAML::Value << file;
      if (!p.labels.empty()) {
        index << YAML::Key << "labels" << YAML::Value << YAML::BeginMap;
        for (const auto& [l, v] : p.labels) {
          auto labelled = lib.get(p.name, v);
          if (!labelled) return app::report_error(labelled.error());
          const std::string lfile = p.name + "." + l + ".md";
          if (auto w = write_text_file(dir / lfile, labelled->text); !w) {
            return app::report_error(w.error());
          }
          index << YAML::Key << l << YAML::Value << lfile;
        }
        index << YAML::EndMap;
      }
      index << YAML::EndMap;
      exported.push_back(
          {{"name", p.name}, {"active_version", p.active_version}, {"labels", p.labels}});
    }
    index << YAML::EndSeq << YAML::EndMap;
    if (auto w = write_text_file(dir / kIndexFile, std::string(index.c_str()) + "\n"); !w) {
      return app::report_error(w.error());
    }
    if (json_) {
      std::cout << json{{"dir", dir.string()}, {"prompts", exported}}.dump(2) << "\n";
    } else {
      fmt::print("exported {} prompt(s) to {}\n", all->size(), dir.string());
    }
    return app::kExitOk;
  }

  if (import_->parsed()) {
    auto entries = read_export(dir_);
    if (!entries) return app::report_error(entries.error());
    const std::string author = author_or_default(author_);
    const std::string reason = fmt::format("import from {}", dir_);
    json imported = json::array();
    for (const auto& [entry, texts] : *entries) {
      auto o = lib.set(entry.name, texts.at(std::string(prompts::kActive)), author, reason, true);
      if (!o) return app::report_error(o.error());
      json labels = json::object();
      for (const auto& [label, text] : texts) {
        if (label == prompts::kActive) continue;
        auto l = lib.set_label_text(entry.name, label, text, author, reason);
        if (!l) return app::report_error(l.error());
        labels[label] = l->version;
      }
      imported.push_back(
          {{"name", entry.name}, {"active_version", o->version}, {"labels", labels}});
      if (!json_) {
        fmt::print("{}: active v{}{}\n", entry.name, o->version,
                   o->created ? " (new version)" : " (unchanged)");
      }
    }
    if (json_) std::cout << json{{"dir", dir_}, {"prompts", imported}}.dump(2) << "\n";
    return app::kExitOk;
  }
  return app::kExitBadInput;
}

}  // namespace parley::bot::cli
