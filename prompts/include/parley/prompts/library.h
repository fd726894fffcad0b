// PromptLibrary: the versioned prompt table. Every change is a new version; nothing is ever
// overwritten. Each prompt has the label `active` (prompts.active_version) and any number of
// named labels (candidate, upstream, …) that point at any version, so trying a prompt and going
// back are one command each.
//
// Writes go through the store's write queue; a version number is taken inside the write
// transaction, so two processes setting the same prompt get consecutive numbers, no gaps and
// no duplicates. active() is the turn's path: it reads a generation counter (one point read)
// and reloads only when any prompt changed, in this process or another, so a change made by
// `parley prompt set` is seen on the next turn without a restart. Each version's template is
// parsed once.
//
// Thread safety: every method is safe from any thread.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "parley/base/clock.h"
#include "parley/base/embedded_file.h"
#include "parley/base/result.h"
#include "parley/prompts/template.h"
#include "parley/storage/store.h"

namespace parley::prompts {

// The author recorded on versions parley itself writes from its shipped defaults.
inline constexpr std::string_view kDefaultsAuthor = "parley";
inline constexpr std::string_view kActive = "active";
inline constexpr std::string_view kUpstream = "upstream";

// The files prompts/defaults/*.md, compiled in; the stem is the prompt's name.
std::span<const EmbeddedFile> builtin_defaults();

struct PromptVersion {
  std::string name;
  int version = 0;
  std::string text;
  std::string author;
  std::string reason;
  int64_t created_at = 0;
  std::vector<std::string> labels;  // labels pointing at this version, `active` first
};

struct PromptInfo {
  std::string name;
  int active_version = 0;
  std::map<std::string, int> labels;  // named labels (not `active`)
  int64_t updated_at = 0;
  std::string author;  // of the active version
};

struct PromptStatus {
  std::string name;
  int active_version = 0;
  bool edited = false;                  // some version was written by an operator
  std::optional<int> upstream_version;  // the `upstream` label, if any
  bool upstream_waiting = false;        // upstream's text differs from the active text
};

struct SetOutcome {
  int version = 0;       // the new version, or the active one when nothing was created
  bool created = false;  // false: the text equals the active text
};

struct SeedReport {
  std::vector<std::string> created;   // new prompts (version 1)
  std::vector<std::string> updated;   // never edited: the new default became active
  std::vector<std::string> upstream;  // edited: the new default waits under `upstream`
};

// What a turn uses: one version of a prompt, parsed.
struct ActivePrompt {
  std::string name;
  int version = 0;
  std::string text;
  Template parsed;
};

class PromptLibrary {
 public:
  explicit PromptLibrary(storage::Store& store, const Clock& clock = SystemClock::instance());

  // Seeds the shipped defaults (version 1 on first start) and applies a changed default:
  // as the new active version if the operator never edited that prompt, else under `upstream`.
  Result<SeedReport> seed_defaults(std::span<const EmbeddedFile> defaults = builtin_defaults());

  Result<std::vector<PromptInfo>> list();
  // The active version, or version N, or the version a label points at.
  Result<PromptVersion> get(std::string_view name, std::optional<int> version = std::nullopt,
                            const std::optional<std::string>& label = std::nullopt);
  Result<std::vector<PromptVersion>> history(std::string_view name);
  Result<std::string> diff(std::string_view name, int a, int b);
  Result<std::vector<PromptStatus>> status();

  // A new active version. Refuses (invalid_argument, nothing written) empty text, invalid
  // UTF-8 and unknown template variables; not_found for an unknown prompt unless `create`.
  Result<SetOutcome> set(std::string_view name, std::string_view text, std::string_view author,
                         std::string_view reason, bool create = false);
  // A new version equal to version `to`, made active. History is never rewritten.
  Result<SetOutcome> rollback(std::string_view name, int to, std::string_view author,
                              std::string_view reason);
  // Points `label` at `version` (`active` moves the active version).
  Status label(std::string_view name, std::string_view label, int version);
  // Stores `text` as a new version without activating it (or finds an existing version with
  // that text) and points `label` at it. Used by import and for upstream defaults.
  Result<SetOutcome> set_label_text(std::string_view name, std::string_view label,
                                    std::string_view text, std::string_view author,
                                    std::string_view reason);

  // The turn's path: the active version, parsed (cached per version).
  Result<std::shared_ptr<const ActivePrompt>> active(std::string_view name);
  // The active versions of several prompts, in the order named, as of one reading of the
  // generation counter (one point read for all of them).
  Result<std::vector<std::shared_ptr<const ActivePrompt>>> active_all(
      std::initializer_list<std::string_view> names);

  // Checks everything set() checks, without writing.
  static Status validate_text(std::string_view name, std::string_view text);
  static Status validate_name(std::string_view name);
  static Status validate_label(std::string_view label);

 private:
  Result<int64_t> generation();
  Result<std::shared_ptr<const ActivePrompt>> active_at(std::string_view name, int64_t generation);

  storage::Store& store_;
  const Clock& clock_;

  std::mutex mu_;
  int64_t cached_generation_ = -1;                                               // GUARDED_BY(mu_)
  std::unordered_map<std::string, std::shared_ptr<const ActivePrompt>> active_;  // GUARDED_BY(mu_)
};

}  // namespace parley::prompts
