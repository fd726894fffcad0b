// Running the real `parley` binary (or a shell script around it) from a test: exit code,
// stdout and stderr captured. Integration tests only; PARLEY_BINARY names the binary.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace parley::testing {

struct Ran {
  int code = -1;
  std::string out;
  std::string err;
};

// Single-quotes `s` for sh.
inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// Runs the shell `script` in `cwd`, capturing its stdout and stderr; waits for it.
inline Ran shell(const std::filesystem::path& cwd, const std::string& script) {
  const auto out = cwd / ".stdout";
  const auto err = cwd / ".stderr";
  const std::string cmd = "cd " + quote(cwd.string()) + " && { " + script + "\n} >" +
                          quote(out.string()) + " 2>" + quote(err.string());
  const int status = std::system(cmd.c_str());  // NOLINT(concurrency-mt-unsafe): test driver
  Ran r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

#ifdef PARLEY_BINARY
// Runs parley in `cwd` with `args`; `before` goes in front of the binary on the command line
// (environment assignments, `env -u …`, or a `printf … |` pipe).
inline Ran parley(const std::filesystem::path& cwd, const std::string& args,
                  const std::string& before = "") {
  return shell(cwd, before + " " + quote(PARLEY_BINARY) + " " + args);
}
#endif

inline bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

}  // namespace parley::testing
