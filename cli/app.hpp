// The `chorus` command: global options (seeds, credentials, --json), the subcommand table and the
// exit codes. Each subcommand parses its own options with Boost.Program_options and returns an
// exit code. Single-threaded apart from the client library's own thread.
#pragma once

#include <chorus/client.hpp>

#include <Poco/JSON/Object.h>

#include <boost/program_options.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace chorus::cli {

namespace po = boost::program_options;

// Exit codes (docs/cli.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// The gossip seed used when neither --seed nor CHORUS_SEEDS names one: a manager started by
// ./run.sh or the package's default config.
inline constexpr const char* kDefaultSeed = "127.0.0.1:30778";

// Thrown for bad usage; main prints it with the subcommand's help hint and exits 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Thrown when an operation failed; main prints it and exits 1.
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Context {
  std::vector<client::Endpoint> seeds;
  std::optional<client::Credentials> credentials;
  bool json = false;
  bool verbose = false;
  std::string command;            // the subcommand's name
  std::vector<std::string> args;  // its arguments (options included)

  // Client settings for the seeds and credentials (discovery through the seeds).
  client::Settings client_settings() const;
  // Parses `args` with `options` (plus --help) and `positional`; prints help and returns false
  // when --help was given. Throws UsageError.
  bool parse(const std::string& usage, po::options_description& options,
             const po::positional_options_description& positional, po::variables_map& vm) const;
};

// Prints a JSON value (object or array) on one line to stdout.
void print_json(const Poco::Dynamic::Var& value);

int run(int argc, char** argv);

// Subcommands.
int cmd_status(const Context& ctx);
int cmd_nodes(const Context& ctx);
int cmd_node(const Context& ctx);
int cmd_rolling_restart(const Context& ctx);
int cmd_logs(const Context& ctx);
int cmd_backup(const Context& ctx);
int cmd_backups(const Context& ctx);
int cmd_restore(const Context& ctx);
int cmd_verify_backup(const Context& ctx);
int cmd_append(const Context& ctx);
int cmd_read(const Context& ctx);
int cmd_tail(const Context& ctx);
int cmd_delete(const Context& ctx);
int cmd_meta(const Context& ctx);
int cmd_bench(const Context& ctx);

}  // namespace chorus::cli
