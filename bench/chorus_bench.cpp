// chorus-bench: a load generator speaking EventStore's TCP protocol (issue 2, item 4).
// Modes: `write` (C connections x K writes in flight, W events of S bytes per write, N streams),
// `read-stream` (optionally fill one stream, then C connections each read it forward in pages) and
// `read-all` ($all forward as admin). Prints a human summary, then one JSON line for the docs.
// Exit code: 0 on success, 1 when any request did not succeed or a connection failed, 2 on bad
// options.
#include <Poco/JSON/Object.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "bench/bench_phase.hpp"
#include "bench/latency_summary.hpp"
#include "common/guid.hpp"

namespace chorus::bench {
namespace {

namespace po = boost::program_options;

// Defaults chosen to match issue 2's workloads.
constexpr int kWriteConnectionsDefault = 64;
constexpr int kReadConnectionsDefault = 1;
constexpr double kWriteDurationSecondsDefault = 10.0;
// Filling a stream for the read benchmark uses large writes from a few connections.
constexpr int kFillBatchEventsDefault = 500;
constexpr int kFillConnectionsDefault = 8;

struct Options {
  std::string mode;
  PhaseConfig phase;
  std::string stream_prefix;
  int64_t streams = 64;
  int64_t fill_events = 0;
  int fill_batch_events = kFillBatchEventsDefault;
  int fill_connections = kFillConnectionsDefault;
  bool auth = false;
  std::string login = "admin";
  std::string password = "changeit";
  std::string label;
};

po::options_description describe(Options& o, int& connections) {
  PhaseConfig& p = o.phase;
  po::options_description d("chorus-bench options");
  d.add_options()("help", "show this help")("mode", po::value(&o.mode)->required(),
                                            "write | read-stream | read-all")(
      "host", po::value(&p.host)->default_value(p.host), "node address")(
      "port", po::value(&p.port)->default_value(p.port), "node external TCP port")(
      "connections", po::value(&connections)->default_value(0),
      "concurrent connections (0: 64 for write, 1 for reads)")(
      "inflight", po::value(&p.inflight)->default_value(1),
      "write requests in flight per connection")("threads", po::value(&p.threads)->default_value(1),
                                                 "io threads (1-2)")(
      "event-size", po::value(&p.event_bytes)->default_value(256), "bytes of data per event")(
      "batch", po::value(&p.batch_events)->default_value(1), "events per write")(
      "streams", po::value(&o.streams)->default_value(64), "streams written round-robin")(
      "stream-prefix", po::value(&o.stream_prefix), "stream name prefix (default: bench-<random>)")(
      "events", po::value(&p.events_total)->default_value(0), "events to write (0: use duration)")(
      "duration-s", po::value(&p.duration_s)->default_value(0), "seconds to write (default 10)")(
      "fill", po::value(&o.fill_events)->default_value(0), "events to write before a read phase")(
      "fill-batch", po::value(&o.fill_batch_events)->default_value(o.fill_batch_events),
      "events per write while filling")(
      "fill-connections", po::value(&o.fill_connections)->default_value(o.fill_connections),
      "connections while filling")("stream", po::value(&p.read_stream),
                                   "stream for read-stream (default: <prefix>-read)")(
      "page", po::value(&p.page_events)->default_value(p.page_events), "events per read page")(
      "read-events-max", po::value(&p.read_events_max)->default_value(0),
      "stop each reader after this many events (0: read to the end)")(
      "auth", po::bool_switch(&o.auth), "send --login/--password with every package")(
      "login", po::value(&o.login)->default_value(o.login), "login for --auth and read-all")(
      "password", po::value(&o.password)->default_value(o.password), "password")(
      "label", po::value(&o.label), "free text copied into the JSON summary");
  return d;
}

// Returns an error text, or "" when the options are usable.
std::string validate(const Options& o) {
  const PhaseConfig& p = o.phase;
  if (o.mode != "write" && o.mode != "read-stream" && o.mode != "read-all")
    return "--mode must be write, read-stream or read-all";
  if (p.connections < 1 || p.connections > kConnectionsMax) return "--connections out of range";
  if (p.inflight < 1 || p.inflight > kInflightMax) return "--inflight must be 1..256";
  if (p.threads < 1 || p.threads > kThreadsMax) return "--threads must be 1..2";
  if (p.event_bytes < 0 || p.event_bytes > kEventBytesMax) return "--event-size out of range";
  if (p.batch_events < 1 || p.batch_events > kBatchEventsMax) return "--batch must be 1..4096";
  if (o.fill_batch_events < 1 || o.fill_batch_events > kBatchEventsMax)
    return "--fill-batch must be 1..4096";
  if (o.fill_connections < 1 || o.fill_connections > kConnectionsMax)
    return "--fill-connections out of range";
  if (o.streams < 1 || o.streams > kStreamsMax) return "--streams out of range";
  if (p.page_events < 1 || p.page_events > kPageEventsMax) return "--page must be 1..4096";
  if (p.events_total < 0 || o.fill_events < 0 || p.read_events_max < 0)
    return "--events, --fill and --read-events-max must not be negative";
  if (p.duration_s < 0 || p.duration_s > static_cast<double>(kPhaseSecondsMax))
    return "--duration-s must be 0..3600";
  return "";
}

std::string random_suffix() { return to_string(random_guid()).substr(0, 8); }

// Parses the command line into `o`; returns false (after printing why) when the run must not go on.
bool parse_options(int argc, char** argv, Options& o, int& exit_code) {
  int connections = 0;
  po::options_description d = describe(o, connections);
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, d), vm);
    if (vm.count("help")) {
      std::cout << d << "\n";
      exit_code = 0;
      return false;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "chorus-bench: " << e.what() << "\n";
    exit_code = 2;
    return false;
  }
  const bool write = o.mode == "write";
  o.phase.connections = connections > 0 ? connections
                        : write         ? kWriteConnectionsDefault
                                        : kReadConnectionsDefault;
  if (write && o.phase.events_total == 0 && o.phase.duration_s == 0)
    o.phase.duration_s = kWriteDurationSecondsDefault;
  if (o.stream_prefix.empty()) o.stream_prefix = "bench-" + random_suffix();
  if (o.phase.read_stream.empty()) o.phase.read_stream = o.stream_prefix + "-read";
  if (o.auth || o.mode == "read-all") o.phase.credentials = wire::Credentials{o.login, o.password};
  const std::string error = validate(o);
  if (!error.empty()) {
    std::cerr << "chorus-bench: " << error << "\n";
    exit_code = 2;
    return false;
  }
  for (int64_t i = 0; i < o.streams; ++i) {
    o.phase.streams.push_back(o.stream_prefix + "-" + std::to_string(i));
  }
  return true;
}

double per_second(int64_t count, double seconds) {
  return seconds > 0 ? static_cast<double>(count) / seconds : 0.0;
}

int64_t problem_count(const PhaseResult& r) {
  int64_t n = static_cast<int64_t>(r.failures.size());
  for (const auto& [name, count] : r.non_success) n += count;
  return n;
}

void print_problems(const PhaseResult& r) {
  for (const auto& [name, count] : r.non_success) {
    std::printf("  non-success %s: %lld\n", name.c_str(), static_cast<long long>(count));
  }
  for (const std::string& failure : r.failures) std::printf("  failure: %s\n", failure.c_str());
}

// Prints the human summary and returns the JSON summary of one phase.
Poco::JSON::Object::Ptr report(const Options& o, const std::string& phase_name, PhaseResult& r) {
  const PhaseConfig& p = o.phase;
  const LatencySummary latency = summarize_latency(r.latencies_us);
  const double events_per_s = per_second(r.events, r.elapsed_s);
  const double requests_per_s = per_second(r.requests, r.elapsed_s);
  const double mb_per_s = per_second(r.reply_bytes, r.elapsed_s) / 1e6;
  std::printf("%s: %d connections, %lld events in %.3f s\n", phase_name.c_str(), p.connections,
              static_cast<long long>(r.events), r.elapsed_s);
  std::printf("  %.0f events/s, %.0f requests/s", events_per_s, requests_per_s);
  if (r.reply_bytes > 0) std::printf(", %.1f MB/s of replies", mb_per_s);
  std::printf("\n  latency ms: p50 %.3f  p99 %.3f  p999 %.3f  max %.3f  (%lld samples)\n",
              latency.p50_ms, latency.p99_ms, latency.p999_ms, latency.max_ms,
              static_cast<long long>(latency.samples));
  print_problems(r);
  Poco::JSON::Object::Ptr json = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  json->set("phase", phase_name);
  json->set("connections", p.connections);
  json->set("inflight", p.inflight);
  json->set("batch", p.batch_events);
  json->set("event_size", p.event_bytes);
  json->set("streams", static_cast<int64_t>(p.streams.size()));
  json->set("page", p.page_events);
  json->set("events", r.events);
  json->set("requests", r.requests);
  json->set("elapsed_s", r.elapsed_s);
  json->set("events_per_s", events_per_s);
  json->set("requests_per_s", requests_per_s);
  json->set("mb_per_s", mb_per_s);
  json->set("p50_ms", latency.p50_ms);
  json->set("p99_ms", latency.p99_ms);
  json->set("p999_ms", latency.p999_ms);
  json->set("max_ms", latency.max_ms);
  json->set("errors", problem_count(r));
  return json;
}

// Writes `fill_events` events (to the read stream, or to the write streams for read-all).
int64_t fill(const Options& o) {
  if (o.fill_events == 0) return 0;
  Options f = o;
  f.phase.kind = PhaseKind::Write;
  f.phase.connections = o.fill_connections;
  f.phase.inflight = 1;
  f.phase.batch_events = o.fill_batch_events;
  f.phase.events_total = o.fill_events;
  f.phase.duration_s = 0;
  if (o.mode == "read-stream") f.phase.streams = {o.phase.read_stream};
  PhaseResult r = run_phase(f.phase);
  report(f, "fill", r);
  return problem_count(r);
}

int run(const Options& o) {
  std::printf("chorus-bench %s against %s:%u (streams %s-*, read stream %s)\n", o.mode.c_str(),
              o.phase.host.c_str(), o.phase.port, o.stream_prefix.c_str(),
              o.phase.read_stream.c_str());
  std::fflush(stdout);
  int64_t problems = fill(o);
  PhaseConfig config = o.phase;
  config.kind = o.mode == "write"         ? PhaseKind::Write
                : o.mode == "read-stream" ? PhaseKind::ReadStream
                                          : PhaseKind::ReadAll;
  Options measured = o;
  measured.phase = config;
  PhaseResult r = run_phase(config);
  Poco::JSON::Object::Ptr json = report(measured, o.mode, r);
  if (!o.label.empty()) json->set("label", o.label);
  problems += problem_count(r);
  json->stringify(std::cout);
  std::cout << std::endl;
  if (problems > 0) {
    std::fprintf(stderr, "chorus-bench: %lld requests or connections did not succeed\n",
                 static_cast<long long>(problems));
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace chorus::bench

int main(int argc, char** argv) {
  chorus::bench::Options options;
  int exit_code = 0;
  if (!chorus::bench::parse_options(argc, argv, options, exit_code)) return exit_code;
  try {
    return chorus::bench::run(options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chorus-bench: %s\n", e.what());
    return 1;
  }
}
