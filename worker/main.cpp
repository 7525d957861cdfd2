// chorus-worker: one database node. Parses the options, opens the log and the engine, serves
// EventStore's external TCP protocol on a small Asio thread pool and the external and internal
// HTTP APIs (Poco), and shuts down cleanly on SIGINT/SIGTERM or POST /admin/shutdown. Exit codes: 0
// normal, 1 cannot start (database, folders, port), 2 usage error.
#include "common/log.hpp"
#include "common/options.hpp"
#include "worker/engine/engine.hpp"
#include "worker/http/http_server.hpp"
#include "worker/tcp/tcp_server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/system/system_error.hpp>

#include <unistd.h>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#ifndef CHORUS_VERSION
#define CHORUS_VERSION "unknown"
#endif

extern char** environ;

namespace {

// Network I/O threads: the engine does the heavy work on its own threads, so two are plenty.
constexpr int kIoThreads = 2;
constexpr int kExitCannotStart = 1;
constexpr const char* kProgram = "chorus-worker";
constexpr const char* kLogFileName = "chorus-worker.log";

// The process environment, CHORUS_* variables only (the parser ignores the rest anyway).
chorus::Environment read_environment() {
  chorus::Environment env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string text(*entry);
    const size_t equals = text.find('=');
    if (equals == std::string::npos || text.rfind("CHORUS_", 0) != 0) continue;
    env.emplace(text.substr(0, equals), text.substr(equals + 1));
  }
  return env;
}

// Creates `folder` (and its parents) if missing; returns "" or the reason it cannot be used.
std::string ensure_folder(const std::string& folder) {
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (ec) return ec.message();
  if (!std::filesystem::is_directory(folder, ec)) return "not a folder";
  return "";
}

int fail_to_start(const std::string& message) {
  std::cerr << kProgram << ": " << message << "\n";
  return kExitCannotStart;
}

// Opens the log file in the --log folder and writes the effective options to it.
std::string start_log(chorus::Log& log, const chorus::ParseResult& parsed) {
  const chorus::WorkerOptions& options = parsed.options;
  if (std::string problem = ensure_folder(options.log_folder); !problem.empty()) {
    return "cannot create log folder '" + options.log_folder + "': " + problem;
  }
  const std::string path = (std::filesystem::path(options.log_folder) / kLogFileName).string();
  if (!log.open_file(path)) return "cannot open log file '" + path + "'";
  log.info(std::string(kProgram) + " " + CHORUS_VERSION + " starting, pid " +
           std::to_string(::getpid()));
  std::string lines = chorus::format_effective_options(parsed.effective);
  size_t start = 0;
  while (start < lines.size()) {
    const size_t end = lines.find('\n', start);
    log.info(lines.substr(start, end - start));
    start = end == std::string::npos ? lines.size() : end + 1;
  }
  return "";
}

chorus::EngineConfig engine_config(const chorus::WorkerOptions& options) {
  chorus::EngineConfig config;
  config.db_folder = options.db_folder;
  config.in_memory = options.mem_db;
  config.reader_threads = options.reader_threads_count;
  config.commit_timeout_ms = options.commit_timeout_ms;
  return config;
}

chorus::tcp::TcpServerConfig tcp_config(const chorus::WorkerOptions& options) {
  chorus::tcp::TcpServerConfig config;
  config.ip = options.ext_ip;
  config.port = options.ext_tcp_port;
  config.heartbeat_interval_ms = options.ext_tcp_heartbeat_interval_ms;
  config.heartbeat_timeout_ms = options.ext_tcp_heartbeat_timeout_ms;
  return config;
}

// What the HTTP node endpoints report; `shutdown` must only post the real work.
chorus::http::NodeConfig http_node_config(const chorus::ParseResult& parsed,
                                          const chorus::tcp::TcpServer& server,
                                          std::function<void()> shutdown) {
  const chorus::WorkerOptions& options = parsed.options;
  chorus::http::NodeConfig config;
  config.version = CHORUS_VERSION;
  config.ext_ip = options.ext_ip;
  config.int_ip = options.int_ip;
  config.ext_tcp_port = options.ext_tcp_port;
  config.int_tcp_port = options.int_tcp_port;
  config.ext_http_port = options.ext_http_port;
  config.int_http_port = options.int_http_port;
  config.node_priority = options.node_priority;
  config.db_folder = options.db_folder;
  config.in_memory = options.mem_db;
  for (const chorus::EffectiveOption& option : parsed.effective) {
    config.options.push_back(
        {option.name, option.value_text, std::string(chorus::to_string(option.source))});
  }
  config.tcp_connections = [&server] { return server.connections(); };
  config.request_shutdown = std::move(shutdown);
  return config;
}

// Starts one HTTP server; "" or the reason it cannot listen.
std::string start_http(chorus::Log& log, chorus::http::HttpServer& server, const std::string& ip,
                       uint16_t port, const char* what) {
  const std::string endpoint = ip + ":" + std::to_string(port);
  try {
    server.start();
  } catch (const std::exception& e) {
    const std::string message =
        std::string("cannot listen on ") + endpoint + " for " + what + ": " + e.what();
    log.error(message);
    return message;
  }
  std::cout << kProgram << " listening: " << what << " " << endpoint << std::endl;
  log.info(std::string("listening: ") + what + " " + endpoint);
  return "";
}

// Serves until SIGINT, SIGTERM or POST /admin/shutdown, then stops the servers, shuts the engine
// down (fsync, close) and stops the io_context.
int serve(chorus::Log& log, const chorus::ParseResult& parsed, chorus::Engine& engine) {
  const chorus::WorkerOptions& options = parsed.options;
  boost::asio::io_context io;
  chorus::tcp::TcpServer server(io, engine, tcp_config(options));
  std::unique_ptr<chorus::http::HttpServer> ext_http;
  std::unique_ptr<chorus::http::HttpServer> int_http;
  bool stopped = false;
  auto shutdown = [&] {
    if (stopped) return;
    stopped = true;
    if (ext_http) ext_http->stop();
    if (int_http) int_http->stop();
    server.stop();
    engine.shutdown();
    io.stop();
  };
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;
    log.info("signal " + std::to_string(signal_number) + " received, shutting down");
    shutdown();
  });
  auto node = std::make_shared<chorus::http::HttpNode>(
      http_node_config(parsed, server, [&io, &log, &shutdown] {
        boost::asio::post(io, [&log, &shutdown] {
          log.info("shutdown requested over HTTP");
          shutdown();
        });
      }));
  ext_http = std::make_unique<chorus::http::HttpServer>(
      engine, node, chorus::http::HttpServerConfig{options.ext_ip, options.ext_http_port, false});
  int_http = std::make_unique<chorus::http::HttpServer>(
      engine, node, chorus::http::HttpServerConfig{options.int_ip, options.int_http_port, true});

  const std::string endpoint = options.ext_ip + ":" + std::to_string(options.ext_tcp_port);
  // The contract says std::system_error; an Asio call that escapes throws Boost's own type.
  std::string listen_error;
  try {
    server.start();
  } catch (const std::system_error& e) {
    listen_error = e.code().message();
  } catch (const boost::system::system_error& e) {
    listen_error = e.code().message();
  }
  if (!listen_error.empty()) {
    const std::string message =
        "cannot listen on " + endpoint + " for external TCP: " + listen_error;
    log.error(message);
    engine.shutdown();
    return fail_to_start(message);
  }
  std::cout << kProgram << " listening: external TCP " << endpoint << std::endl;
  log.info("listening: external TCP " + endpoint);
  std::string http_error =
      start_http(log, *ext_http, options.ext_ip, options.ext_http_port, "external HTTP");
  if (http_error.empty()) {
    http_error = start_http(log, *int_http, options.int_ip, options.int_http_port, "internal HTTP");
  }
  if (!http_error.empty()) {
    shutdown();
    return fail_to_start(http_error);
  }

  std::vector<std::thread> threads;
  for (int i = 1; i < kIoThreads; ++i) threads.emplace_back([&io] { io.run(); });
  io.run();
  for (std::thread& thread : threads) thread.join();
  log.info("stopped");
  return EXIT_SUCCESS;
}

int run(const chorus::ParseResult& parsed) {
  const chorus::WorkerOptions& options = parsed.options;
  chorus::Log log(
      chorus::parse_log_level(options.log_level).value_or(chorus::LogLevel::kInformation));
  if (std::string problem = start_log(log, parsed); !problem.empty()) {
    return fail_to_start(problem);
  }
  if (!options.mem_db) {
    if (std::string problem = ensure_folder(options.db_folder); !problem.empty()) {
      return fail_to_start("cannot create database folder '" + options.db_folder + "': " + problem);
    }
  }
  std::unique_ptr<chorus::Engine> engine;
  try {
    engine = chorus::Engine::open(engine_config(options));
  } catch (const std::exception& e) {
    log.error(std::string("cannot open the database: ") + e.what());
    return fail_to_start(std::string("cannot open the database: ") + e.what());
  }
  const int code = serve(log, parsed, *engine);
  engine->shutdown();
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  const chorus::ParseResult parsed = chorus::parse_worker_options(argc, argv, read_environment());
  if (!parsed.ok()) {
    std::cerr << kProgram << ": " << parsed.error << " (see " << kProgram << " --help)\n";
    return parsed.exit_code;
  }
  if (parsed.options.help) {
    std::cout << chorus::worker_options_help();
    return EXIT_SUCCESS;
  }
  if (parsed.options.version) {
    std::cout << kProgram << " " << CHORUS_VERSION << "\n";
    return EXIT_SUCCESS;
  }
  if (parsed.options.what_if) {
    std::cout << chorus::format_effective_options(parsed.effective);
    return EXIT_SUCCESS;
  }
  return run(parsed);
}
