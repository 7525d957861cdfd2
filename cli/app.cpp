// Global options, dispatch to the subcommands and the mapping of errors to exit codes.
#include "cli/app.hpp"

#include <Poco/JSON/Stringifier.h>

#include <cstdlib>
#include <functional>
#include <iostream>
#include <sstream>

namespace chorus::cli {
namespace {

struct Command {
  const char* name;
  int (*run)(const Context&);
  const char* summary;
};

const Command kCommands[] = {
    {"status", cmd_status, "the cluster's members: roles, checkpoints, lag (via any seed)"},
    {"nodes", cmd_nodes, "every manager's nodes: process state, pid, restarts, role"},
    {"node", cmd_node, "node start|stop|restart|resign NAME (through its manager)"},
    {"rolling-restart", cmd_rolling_restart, "restart each machine's nodes, followers first"},
    {"logs", cmd_logs, "logs NAME [-f]: a node's output (from its manager)"},
    {"backup", cmd_backup, "backup NAME: an online backup of a node into its manager's BackupRoot"},
    {"backups", cmd_backups, "the backups the managers hold"},
    {"restore", cmd_restore, "restore NAME --folder F (stopped node) | --from DIR --to DATA"},
    {"verify-backup", cmd_verify_backup, "verify-backup DIR: check a backup's checksums"},
    {"append", cmd_append, "append STREAM TYPE [DATA|-]: write one event"},
    {"read", cmd_read, "read STREAM: read events forward or backward"},
    {"tail", cmd_tail, "tail STREAM|$all: print new events as they are written (Ctrl-C stops)"},
    {"delete", cmd_delete, "delete STREAM [--hard]: soft- or hard-delete a stream"},
    {"meta", cmd_meta, "meta STREAM [--set JSON]: read or write a stream's metadata"},
    {"bench", cmd_bench, "bench write|read: measure this machine and cluster"},
};

std::string top_help(const po::options_description& global) {
  std::ostringstream out;
  out << "usage: chorus [global options] COMMAND [options]\n\ncommands:\n";
  for (const Command& c : kCommands) {
    out << "  " << c.name << std::string(18 - std::string(c.name).size(), ' ') << c.summary << "\n";
  }
  out << "\n"
      << global
      << "\n`chorus COMMAND --help` describes a command. Exit codes: 0 ok, 1 the operation "
         "failed, 2 bad usage.\n";
  return out.str();
}

std::vector<client::Endpoint> parse_seeds(const std::vector<std::string>& texts) {
  std::vector<client::Endpoint> seeds;
  for (const std::string& text : texts) {
    // CHORUS_SEEDS and --seed both accept comma-separated lists.
    std::stringstream list(text);
    std::string item;
    while (std::getline(list, item, ',')) {
      if (item.empty()) continue;
      std::string error;
      auto endpoint = client::parse_endpoint(item, 2113, &error);
      if (!endpoint) throw UsageError("--seed: " + error);
      seeds.push_back(*endpoint);
    }
  }
  return seeds;
}

const char* env_or_null(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

// Fills the context from the global options and the environment.
void apply_globals(const po::variables_map& vm, Context& ctx) {
  std::vector<std::string> seed_texts;
  if (vm.count("seed")) seed_texts = vm["seed"].as<std::vector<std::string>>();
  if (seed_texts.empty() && env_or_null("CHORUS_SEEDS")) seed_texts = {env_or_null("CHORUS_SEEDS")};
  if (seed_texts.empty()) seed_texts = {kDefaultSeed};
  ctx.seeds = parse_seeds(seed_texts);
  std::string user = vm.count("user") ? vm["user"].as<std::string>() : "";
  std::string password = vm.count("password") ? vm["password"].as<std::string>() : "";
  if (user.empty() && env_or_null("CHORUS_USER")) user = env_or_null("CHORUS_USER");
  if (password.empty() && env_or_null("CHORUS_PASSWORD")) {
    password = env_or_null("CHORUS_PASSWORD");
  }
  if (!user.empty()) ctx.credentials = client::Credentials{user, password};
  if (user.empty() && !password.empty()) throw UsageError("--password needs --user");
  ctx.json = vm.count("json") > 0;
  ctx.verbose = vm.count("verbose") > 0;
}

int dispatch(int argc, char** argv) {
  po::options_description global("global options");
  global.add_options()("help,h", "show this help")(
      "seed", po::value<std::vector<std::string>>()->composing(),
      "gossip seed host:port of a manager or node (repeatable, or comma-separated; env "
      "CHORUS_SEEDS; default 127.0.0.1:30778)")("user", po::value<std::string>(),
                                                "login (env CHORUS_USER)")(
      "password", po::value<std::string>(), "password (env CHORUS_PASSWORD)")(
      "json", "print JSON for scripts instead of tables")("verbose,v",
                                                          "log connections and retries to stderr");
  po::options_description hidden;
  hidden.add_options()("command", po::value<std::string>())("args",
                                                            po::value<std::vector<std::string>>());
  po::options_description all;
  all.add(global).add(hidden);
  po::positional_options_description positional;
  positional.add("command", 1).add("args", -1);
  po::parsed_options parsed = po::command_line_parser(argc, argv)
                                  .options(all)
                                  .positional(positional)
                                  .allow_unregistered()
                                  .run();
  po::variables_map vm;
  po::store(parsed, vm);
  po::notify(vm);
  if (!vm.count("command")) {
    std::cout << top_help(global);
    if (vm.count("help")) return kExitOk;
    throw UsageError("no command given");
  }
  Context ctx;
  ctx.command = vm["command"].as<std::string>();
  ctx.args = po::collect_unrecognized(parsed.options, po::include_positional);
  ctx.args.erase(ctx.args.begin());  // the command itself
  // --help after the command belongs to the command.
  if (vm.count("help")) ctx.args.push_back("--help");
  apply_globals(vm, ctx);
  for (const Command& c : kCommands) {
    if (ctx.command == c.name) return c.run(ctx);
  }
  throw UsageError("unknown command '" + ctx.command + "' (chorus --help lists them)");
}

}  // namespace

client::Settings Context::client_settings() const {
  client::Settings settings;
  settings.gossip_seeds = seeds;
  settings.credentials = credentials;
  settings.connection_name = "chorus-cli";
  if (verbose) {
    settings.log = [](const std::string& line) { std::cerr << "chorus: " << line << std::endl; };
  }
  return settings;
}

bool Context::parse(const std::string& usage, po::options_description& options,
                    const po::positional_options_description& positional,
                    po::variables_map& vm) const {
  options.add_options()("help,h", "show this help");
  try {
    po::store(po::command_line_parser(args).options(options).positional(positional).run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: chorus " << usage << "\n\n" << options << "\n";
      return false;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(std::string(e.what()) + "\nusage: chorus " + usage);
  }
  return true;
}

void print_json(const Poco::Dynamic::Var& value) {
  if (value.type() == typeid(Poco::JSON::Object::Ptr)) {
    value.extract<Poco::JSON::Object::Ptr>()->stringify(std::cout);
  } else if (value.type() == typeid(Poco::JSON::Array::Ptr)) {
    value.extract<Poco::JSON::Array::Ptr>()->stringify(std::cout);
  } else {
    Poco::JSON::Stringifier::stringify(value, std::cout);
  }
  std::cout << std::endl;
}

int run(int argc, char** argv) {
  try {
    return dispatch(argc, argv);
  } catch (const UsageError& e) {
    std::cerr << "chorus: " << e.what() << "\n";
    return kExitUsage;
  } catch (const po::error& e) {
    std::cerr << "chorus: " << e.what() << "\n";
    return kExitUsage;
  } catch (const Failure& e) {
    std::cerr << "chorus: " << e.what() << "\n";
    return kExitFailed;
  } catch (const std::exception& e) {
    std::cerr << "chorus: " << e.what() << "\n";
    return kExitFailed;
  }
}

}  // namespace chorus::cli
