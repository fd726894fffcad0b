// parley: the process entry point. Everything is wired in parley_bot.
#include "parley/bot/cli/cli.h"

int main(int argc, char** argv) { return parley::bot::cli::run_cli(argc, argv); }
