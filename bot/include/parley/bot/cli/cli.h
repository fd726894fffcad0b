// The `parley` command line: parley [--config FILE] [--db PATH] <command>.
// Exit codes: 0 success; 1 a check failed or the operation failed; 2 bad input (usage, a
// malformed config, a database this binary cannot use).
#pragma once

namespace parley::bot::cli {

int run_cli(int argc, char** argv);

}  // namespace parley::bot::cli
