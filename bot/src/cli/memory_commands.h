// `parley memory list|show|recall|import|export|forget`: what parley remembers about a user, for
// the operator, read from and written to the store without starting the bot (beside a running
// one too: the store's writer lock serialises them). `--user` names the user as
// CHANNEL:ID (`discord:80351110224678912`, `email:alice@example.org`), a bare name being a
// console login, or `#N` for the user's number. recall ranks exactly as a turn does
// (MemoryRepository::recall_ranked).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "parley/bot/config/config.h"

namespace parley::bot::cli {

class MemoryCommands {
 public:
  explicit MemoryCommands(CLI::App& app);

  [[nodiscard]] bool selected() const { return memory_->parsed(); }
  // Returns the process exit code: 2 for a bad option, an unknown user or a bad import line
  // (every bad line named FILE:LINE; nothing imported then).
  int run(const config::Config& cfg);

 private:
  CLI::App* memory_ = nullptr;
  CLI::App* list_ = nullptr;
  CLI::App* show_ = nullptr;
  CLI::App* recall_ = nullptr;
  CLI::App* import_ = nullptr;
  CLI::App* export_ = nullptr;
  CLI::App* forget_ = nullptr;
  std::string user_;
  std::string query_;
  std::string file_;
  int64_t id_ = 0;
  size_t limit_ = 10;
  bool json_ = false;
  bool history_ = false;
};

}  // namespace parley::bot::cli
