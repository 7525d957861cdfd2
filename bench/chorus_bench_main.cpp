// chorus-bench: `chorus bench` under its old name (the load generator moved to cli/ onto the
// client library); `chorus-bench --mode write ...` runs `chorus bench --mode write ...`.
#include <string>
#include <vector>

#include "cli/app.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> storage = {"chorus", "bench"};
  for (int i = 1; i < argc; ++i) storage.emplace_back(argv[i]);
  std::vector<char*> args;
  for (std::string& arg : storage) args.push_back(arg.data());
  return chorus::cli::run(static_cast<int>(args.size()), args.data());
}
