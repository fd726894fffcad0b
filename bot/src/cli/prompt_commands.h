// `parley prompt …`: the operator's commands over the versioned prompt table.
// Every command takes --json. Bad input (an unknown prompt, version or label; empty text; text
// that is not UTF-8; an unknown template variable) exits 2 with one line naming what was wrong,
// and writes nothing.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "parley/storage/store.h"

namespace parley::bot::cli {

class PromptCommands {
 public:
  // Adds the `prompt` subcommand tree to `app`.
  explicit PromptCommands(CLI::App& app);

  [[nodiscard]] bool selected() const { return prompt_->parsed(); }
  // The selected command only reads (list, show, history, diff, status, export): it must not
  // create a database that does not exist.
  [[nodiscard]] bool read_only() const;
  // Runs the selected command against `store`; returns the process exit code.
  int run(storage::Store& store);

 private:
  CLI::App* prompt_ = nullptr;
  CLI::App* list_ = nullptr;
  CLI::App* show_ = nullptr;
  CLI::App* set_ = nullptr;
  CLI::App* edit_ = nullptr;
  CLI::App* history_ = nullptr;
  CLI::App* diff_ = nullptr;
  CLI::App* rollback_ = nullptr;
  CLI::App* label_ = nullptr;
  CLI::App* status_ = nullptr;
  CLI::App* export_ = nullptr;
  CLI::App* import_ = nullptr;

  bool json_ = false;
  std::string name_;
  std::string label_name_;
  std::string file_;
  std::string reason_;
  std::string author_;
  std::string dir_;
  bool create_ = false;
  std::optional<int> version_;
  int a_ = 0;
  int b_ = 0;
  int to_ = 0;
};

}  // namespace parley::bot::cli
