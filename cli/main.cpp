// chorus: the command-line tool for Chorus clusters (docs/cli.md).
#include "cli/app.hpp"

int main(int argc, char** argv) { return chorus::cli::run(argc, argv); }
