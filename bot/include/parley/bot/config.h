// parley.yaml: loading and validation. With no file, the embedded defaults apply (database
// under ./data/). Errors name the file, the line and the key; an unknown key is an error, not
// silently ignored. Secrets never live in this file (they come from the environment).
#pragma once

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "parley/bot/access.h"
#include "parley/bot/llm/provider.h"
#include "parley/storage/store.h"

namespace parley::bot {

struct Config {
  std::filesystem::path source;  // empty: embedded defaults
  storage::StoreOptions storage;
  llm::LlmSettings llm;
  // capabilities.yaml (relative paths: to the working directory); empty: embedded defaults.
  std::filesystem::path capabilities_file;
  struct Http {
    std::string listen = "127.0.0.1:8787";  // HOST:PORT of the HTTP channel
    std::string token_env = "PARLEY_HTTP_TOKEN";  // the variable holding its bearer token
  } http;
  AccessPolicy access;
  struct Lanes {
    std::chrono::milliseconds debounce{400};  // a burst settles this long after its last message
    std::chrono::milliseconds max_wait{2000};  // … but waits at most this after the turn before
  } lanes;
  std::string log_level = "info";
};

// Thrown only at start-up; what() is "FILE:LINE:COLUMN: KEY: problem".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

Config default_config();
Config load_config(const std::filesystem::path& file);
// Parses YAML text; `name` is used in error messages in place of a file name.
Config parse_config(const std::string& yaml, const std::string& name);

}  // namespace parley::bot
