// Fuzz target: the manager's configuration (manager/config): its YAML file, the watchdog file,
// CHORUS_MANAGER_* variables and the command line. The input is four sections separated by lines
// "----": YAML, watchdog file, environment (NAME=value lines), arguments (one per line).
// Properties: parsing never throws and gives a config or an error; an accepted config has unique
// node names, one size per cluster, and worker command lines that the
// worker's own option parser accepts.
#include "common/options.hpp"
#include "manager/config.hpp"
#include "tests/fuzz/fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace {

using chorus::manager::ConfigResult;

constexpr size_t kSections = 4;
constexpr size_t kArgsMax = 64;

std::vector<std::string> split(std::string_view text, std::string_view separator) {
  std::vector<std::string> parts;
  while (true) {
    const size_t at = text.find(separator);
    parts.emplace_back(text.substr(0, at));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + separator.size());
  }
}

void check_accepted(const ConfigResult& result) {
  FUZZ_CHECK(result.error.empty(), "accepted with an error");
  std::set<std::string> names;
  std::map<std::string, int> sizes;
  for (const auto& node : result.config.nodes) {
    FUZZ_CHECK(names.insert(node.name).second, "two nodes with one name");
    const auto [it, fresh] = sizes.emplace(node.cluster, node.resolved.cluster_size);
    FUZZ_CHECK(fresh || it->second == node.resolved.cluster_size, "two sizes for one cluster");
    const std::vector<std::string> args = chorus::manager::worker_args(result.config, node);
    bool reads_file = false;
    std::vector<const char*> argv = {"chorus-worker"};
    for (const auto& a : args) {
      reads_file = reads_file || a.rfind("--config", 0) == 0;
      argv.push_back(a.c_str());
    }
    if (reads_file) continue;  // the worker would read its own file from disk
    const auto worker = chorus::parse_worker_options(static_cast<int>(argv.size()), argv.data(),
                                                     chorus::Environment{});
    if (!worker.ok()) std::fprintf(stderr, "worker refused: %s\n", worker.error.c_str());
    FUZZ_CHECK(worker.ok(), "the worker refuses the command line its manager gives it");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> sections =
      split(std::string_view(reinterpret_cast<const char*>(data), size), "\n----\n");
  sections.resize(kSections);
  const std::string& yaml = sections[0];
  const std::string& watchdog = sections[1];
  chorus::Environment env{{"CHORUS_MANAGER_CONFIG", "/fuzz/manager.yaml"}};
  for (const auto& line : split(sections[2], "\n")) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  std::vector<std::string> args = split(sections[3], "\n");
  if (args.size() > kArgsMax) args.resize(kArgsMax);
  std::vector<const char*> argv = {"chorus-manager"};
  for (const auto& a : args) {
    if (!a.empty()) argv.push_back(a.c_str());
  }
  const auto read_file = [&](const std::string& path, std::string* text) {
    if (path.empty() || path == "/fuzz/unreadable") return false;
    *text = path.ends_with(".yaml") ? yaml : watchdog;
    return true;
  };
  const ConfigResult result = chorus::manager::parse_manager_config(static_cast<int>(argv.size()),
                                                                    argv.data(), env, read_file);
  FUZZ_CHECK(result.ok() == (result.exit_code == 0), "exit code");
  if (result.ok()) {
    check_accepted(result);
  } else {
    FUZZ_CHECK(!result.error.empty(), "refused without an error");
  }
  return 0;
}
