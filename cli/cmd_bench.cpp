// `chorus bench write|read|read-all`: a load generator on the client library (it was bench/'s
// chorus-bench, which now runs this same code). `write`: C connections x K writes in flight, W
// events of S bytes per write, N streams; `read`: optionally fill one stream, then C connections
// each read it forward in pages; `read-all`: $all forward (as admin). A live progress line goes
// to stderr when it is a terminal; then a summary table, then one JSON line (only the JSON with
// --json). Exit 1 when any request did not succeed or a connection failed. Beside the figures it
// reports the server's CPU per event: every live node's `process.cpuSeconds` (GET /stats, open
// to anyone as in EventStore) read through the seeds' gossip before and after the measured phase.
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <thread>

#include "cli/app.hpp"
#include "cli/bench_phase.hpp"
#include "cli/latency_summary.hpp"
#include "cli/manager_api.hpp"
#include "cli/table.hpp"
#include "common/guid.hpp"

namespace chorus::cli {
namespace {

using bench::PhaseConfig;
using bench::PhaseKind;
using bench::PhaseProgress;
using bench::PhaseResult;

// Defaults chosen to match issue 2's workloads.
constexpr int kWriteConnectionsDefault = 64;
constexpr int kReadConnectionsDefault = 1;
constexpr double kWriteDurationSecondsDefault = 10.0;
// Filling a stream for the read benchmark uses large writes from a few connections.
constexpr int kFillBatchEventsDefault = 500;
constexpr int kFillConnectionsDefault = 8;
// read-all and --auth without --user run as EventStore's default administrator.
constexpr const char* kBenchLoginDefault = "admin";
constexpr const char* kBenchPasswordDefault = "changeit";
// The progress line is redrawn this often.
constexpr int kProgressPeriodMs = 1000;

struct Options {
  std::string mode;
  PhaseConfig phase;
  std::string host;
  uint16_t port = 0;
  std::string stream_prefix;
  int64_t streams = 64;
  int64_t fill_events = 0;
  int fill_batch_events = kFillBatchEventsDefault;
  int fill_connections = kFillConnectionsDefault;
  bool auth = false;
  std::string label;
};

void describe(po::options_description& d, Options& o, int& connections) {
  PhaseConfig& p = o.phase;
  d.add_options()("mode", po::value(&o.mode)->required(), "write | read | read-all")(
      "host", po::value(&o.host), "node address (with --port: no discovery; default 127.0.0.1)")(
      "port", po::value(&o.port), "node external TCP port (default: the leader, via the seeds)")(
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
                                   "stream for read (default: <prefix>-read)")(
      "page", po::value(&p.page_events)->default_value(p.page_events), "events per read page")(
      "read-events-max", po::value(&p.read_events_max)->default_value(0),
      "stop each reader after this many events (0: read to the end)")(
      "auth", po::bool_switch(&o.auth),
      "authenticate (as --user/--password, else admin/changeit; read-all always does)")(
      "label", po::value(&o.label), "free text copied into the JSON summary")(
      "max-retries", po::value(&p.max_retries)->default_value(0),
      "resends per request before it counts as an error (-1: no limit; 0 measures the server "
      "alone, more measures what an application with the official retry rules sees)")(
      "max-reconnections", po::value(&p.max_reconnections)->default_value(0),
      "reconnections in a row per connection before it fails (-1: no limit)");
}

// Returns an error text, or "" when the options are usable.
std::string validate(const Options& o) {
  const PhaseConfig& p = o.phase;
  if (o.mode != "write" && o.mode != "read-stream" && o.mode != "read-all")
    return "the mode must be write, read (or read-stream) or read-all";
  if (p.connections < 1 || p.connections > bench::kConnectionsMax)
    return "--connections out of range";
  if (p.inflight < 1 || p.inflight > bench::kInflightMax) return "--inflight must be 1..256";
  if (p.threads < 1 || p.threads > bench::kThreadsMax) return "--threads must be 1..2";
  if (p.event_bytes < 0 || p.event_bytes > bench::kEventBytesMax)
    return "--event-size out of range";
  if (p.batch_events < 1 || p.batch_events > bench::kBatchEventsMax)
    return "--batch must be 1..4096";
  if (o.fill_batch_events < 1 || o.fill_batch_events > bench::kBatchEventsMax)
    return "--fill-batch must be 1..4096";
  if (o.fill_connections < 1 || o.fill_connections > bench::kConnectionsMax)
    return "--fill-connections out of range";
  if (o.streams < 1 || o.streams > bench::kStreamsMax) return "--streams out of range";
  if (p.page_events < 1 || p.page_events > bench::kPageEventsMax) return "--page must be 1..4096";
  if (p.events_total < 0 || o.fill_events < 0 || p.read_events_max < 0)
    return "--events, --fill and --read-events-max must not be negative";
  if (p.max_retries < -1 || p.max_reconnections < -1)
    return "--max-retries and --max-reconnections must be -1 (no limit) or more";
  if (p.duration_s < 0 || p.duration_s > static_cast<double>(bench::kPhaseSecondsMax))
    return "--duration-s must be 0..3600";
  return "";
}

// Fills in the defaults that depend on the mode; throws UsageError.
void complete(const Context& ctx, Options& o, int connections) {
  if (o.mode == "read") o.mode = "read-stream";
  const bool write = o.mode == "write";
  o.phase.connections = connections > 0 ? connections
                        : write         ? kWriteConnectionsDefault
                                        : kReadConnectionsDefault;
  if (write && o.phase.events_total == 0 && o.phase.duration_s == 0)
    o.phase.duration_s = kWriteDurationSecondsDefault;
  if (o.stream_prefix.empty()) o.stream_prefix = "bench-" + to_string(random_guid()).substr(0, 8);
  if (o.phase.read_stream.empty()) o.phase.read_stream = o.stream_prefix + "-read";
  o.phase.settings = ctx.client_settings();
  if (ctx.credentials) {
    o.phase.settings.credentials = ctx.credentials;
  } else if (o.auth || o.mode == "read-all") {
    o.phase.settings.credentials = client::Credentials{kBenchLoginDefault, kBenchPasswordDefault};
  }
  if (o.port != 0 || !o.host.empty()) {
    if (o.port == 0) throw UsageError("--host needs --port (the node's external TCP port)");
    o.phase.endpoint = client::Endpoint{o.host.empty() ? "127.0.0.1" : o.host, o.port};
  }
  const std::string error = validate(o);
  if (!error.empty()) throw UsageError(error);
  for (int64_t i = 0; i < o.streams; ++i) {
    o.phase.streams.push_back(o.stream_prefix + "-" + std::to_string(i));
  }
}

double per_second(int64_t count, double seconds) {
  return seconds > 0 ? static_cast<double>(count) / seconds : 0.0;
}

int64_t problem_count(const PhaseResult& r) {
  int64_t n = std::ssize(r.failures);
  for (const auto& [name, count] : r.non_success) n += count;
  return n;
}

std::string fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

// Redraws "phase: seconds, events, events/s, errors" on stderr while a phase runs (only when
// stderr is a terminal, so scripts that keep the last line of the output get the JSON).
class ProgressLine {
 public:
  ProgressLine(std::string phase, PhaseProgress& progress)
      : phase_(std::move(phase)), progress_(progress), enabled_(isatty(STDERR_FILENO) == 1) {
    if (enabled_) thread_ = std::thread([this] { loop(); });
  }
  ~ProgressLine() {
    if (!enabled_) return;
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    wake_.notify_all();
    thread_.join();
    std::fprintf(stderr, "\r\033[K");
  }

 private:
  void loop() {
    const auto begin = std::chrono::steady_clock::now();
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, std::chrono::milliseconds(kProgressPeriodMs),
                           [this] { return done_; })) {
      if (!progress_.started.load()) continue;
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
      const int64_t events = progress_.events.load();
      std::fprintf(stderr, "\r\033[K%s: %.0f s, %lld events, %.0f events/s, %lld errors",
                   phase_.c_str(), s, static_cast<long long>(events), per_second(events, s),
                   static_cast<long long>(progress_.errors.load()));
    }
  }

  std::string phase_;
  PhaseProgress& progress_;
  bool enabled_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread thread_;
};

PhaseResult run_with_progress(const std::string& name, const PhaseConfig& config) {
  PhaseProgress progress;
  ProgressLine line(name, progress);
  return bench::run_phase(config, &progress);
}

// The JSON summary of one phase (the keys docs/benchmarks.md and bench/*.sh read).
Poco::JSON::Object::Ptr summary_json(const PhaseConfig& p, const std::string& phase_name,
                                     const PhaseResult& r, const bench::LatencySummary& latency) {
  Poco::JSON::Object::Ptr json = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  json->set("phase", phase_name);
  json->set("connections", p.connections);
  json->set("inflight", p.inflight);
  json->set("batch", p.batch_events);
  json->set("event_size", p.event_bytes);
  json->set("streams", std::ssize(p.streams));
  json->set("page", p.page_events);
  json->set("events", r.events);
  json->set("requests", r.requests);
  json->set("elapsed_s", r.elapsed_s);
  json->set("events_per_s", per_second(r.events, r.elapsed_s));
  json->set("requests_per_s", per_second(r.requests, r.elapsed_s));
  json->set("mb_per_s", per_second(r.reply_bytes, r.elapsed_s) / 1e6);
  json->set("p50_ms", latency.p50_ms);
  json->set("p99_ms", latency.p99_ms);
  json->set("p999_ms", latency.p999_ms);
  json->set("max_ms", latency.max_ms);
  json->set("errors", problem_count(r));
  return json;
}

struct PhaseReport {
  std::string name;
  PhaseConfig config;
  PhaseResult result;
  bench::LatencySummary latency;
};

void print_table(const std::vector<PhaseReport>& reports) {
  Table table({"PHASE", "CONNS", "EVENTS", "SECONDS", "EVENTS/S", "REQ/S", "MB/S", "P50 MS",
               "P99 MS", "P99.9 MS", "MAX MS", "ERRORS"});
  for (const PhaseReport& r : reports) {
    table.add({r.name, std::to_string(r.config.connections), std::to_string(r.result.events),
               fixed(r.result.elapsed_s, 3),
               fixed(per_second(r.result.events, r.result.elapsed_s), 0),
               fixed(per_second(r.result.requests, r.result.elapsed_s), 0),
               fixed(per_second(r.result.reply_bytes, r.result.elapsed_s) / 1e6, 1),
               fixed(r.latency.p50_ms, 3), fixed(r.latency.p99_ms, 3), fixed(r.latency.p999_ms, 3),
               fixed(r.latency.max_ms, 3), std::to_string(problem_count(r.result))});
  }
  table.print(std::cout);
  for (const PhaseReport& r : reports) {
    for (const auto& [name, count] : r.result.non_success) {
      std::cout << "  " << r.name << " non-success " << name << ": " << count << "\n";
    }
    for (const std::string& failure : r.result.failures) {
      std::cout << "  " << r.name << " failure: " << failure << "\n";
    }
  }
}

// ---------------------------------------------------------------- server CPU

// One node's process as its /stats describes it.
struct NodeCpu {
  client::Endpoint http;
  int64_t pid = 0;
  double cpu_seconds = 0;
};

// What the nodes used during the measured phase; `unknown` says why it could not be measured.
struct ServerCpu {
  std::vector<std::pair<std::string, double>> nodes;  // "host:port" (HTTP) -> CPU seconds
  std::string unknown;
  double total() const {
    double sum = 0;
    for (const auto& [name, seconds] : nodes) sum += seconds;
    return sum;
  }
};

std::optional<NodeCpu> read_node_cpu(const client::Endpoint& http, std::string* why) {
  try {
    const HttpReply reply = http_request(http, "GET", "/stats", std::nullopt, kHttpTimeoutMs);
    if (reply.status != 200) {
      *why = client::to_string(http) + "/stats: HTTP " + std::to_string(reply.status);
      return std::nullopt;
    }
    const auto process = json_object(reply.body, "/stats")->getObject("process");
    if (!process || !process->has("cpuSeconds") || !process->has("pid")) {
      *why = client::to_string(http) + "/stats has no process.cpuSeconds";
      return std::nullopt;
    }
    return NodeCpu{http, process->getValue<int64_t>("pid"),
                   process->getValue<double>("cpuSeconds")};
  } catch (const std::exception& e) {
    *why = e.what();
    return std::nullopt;
  }
}

// Every live node of the seeds' cluster (managers excluded). With --host/--port the gossip must
// list that node, so that a seed of another cluster is not measured instead.
std::vector<NodeCpu> sample_nodes(const Context& ctx, const Options& o, std::string* why) {
  SeedGossip sg;
  try {
    sg = first_gossip(ctx);
  } catch (const Failure& e) {
    *why = e.what();
    return {};
  }
  if (o.phase.endpoint) {
    const bool listed =
        std::any_of(sg.gossip.members.begin(), sg.gossip.members.end(), [&](const MemberInfo& m) {
          return m.external_tcp_port == o.phase.endpoint->port ||
                 m.external_secure_tcp_port == o.phase.endpoint->port;
        });
    if (!listed) {
      *why = "the gossip of " + client::to_string(sg.seed) + " does not list the node at " +
             client::to_string(*o.phase.endpoint) + " (give its HTTP port with --seed)";
      return {};
    }
  }
  std::vector<NodeCpu> nodes;
  for (const MemberInfo& m : sg.gossip.members) {
    if (m.state == "Manager" || !m.is_alive || m.external_http_port <= 0) continue;
    const client::Endpoint http{m.external_http_ip, static_cast<uint16_t>(m.external_http_port)};
    auto node = read_node_cpu(http, why);
    if (!node) return {};
    nodes.push_back(*node);
  }
  if (nodes.empty()) *why = "the gossip lists no live node";
  return nodes;
}

// The CPU each node sampled in `before` used since; a node that restarted (another pid) or no
// longer answers makes the figure unknown.
ServerCpu server_cpu_since(const std::vector<NodeCpu>& before, const std::string& why_not) {
  ServerCpu out;
  if (before.empty()) {
    out.unknown = why_not;
    return out;
  }
  for (const NodeCpu& b : before) {
    std::string why;
    const auto a = read_node_cpu(b.http, &why);
    if (!a) {
      out.unknown = why;
      break;
    }
    if (a->pid != b.pid) {
      out.unknown = client::to_string(b.http) + " restarted during the phase";
      break;
    }
    out.nodes.emplace_back(client::to_string(b.http), a->cpu_seconds - b.cpu_seconds);
  }
  if (!out.unknown.empty()) out.nodes.clear();
  return out;
}

void add_server_cpu(Poco::JSON::Object& json, const ServerCpu& cpu, int64_t events) {
  if (!cpu.unknown.empty()) {
    json.set("server_cpu_unknown", cpu.unknown);
    return;
  }
  json.set("server_nodes", std::ssize(cpu.nodes));
  json.set("server_cpu_s", cpu.total());
  json.set("server_cpu_us_per_event",
           events > 0 ? cpu.total() * 1e6 / static_cast<double>(events) : 0.0);
  Poco::JSON::Object::Ptr per_node = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  for (const auto& [name, seconds] : cpu.nodes) per_node->set(name, seconds);
  json.set("server_cpu_s_by_node", per_node);
}

void print_server_cpu(const ServerCpu& cpu, int64_t events) {
  if (!cpu.unknown.empty()) {
    std::cout << "server CPU: unknown (" << cpu.unknown << ")\n";
    return;
  }
  std::cout << "server CPU: " << fixed(cpu.total(), 2) << " s on " << cpu.nodes.size()
            << " node(s), "
            << fixed(events > 0 ? cpu.total() * 1e6 / static_cast<double>(events) : 0.0, 1)
            << " us per event (";
  for (size_t i = 0; i < cpu.nodes.size(); ++i) {
    std::cout << (i ? ", " : "") << cpu.nodes[i].first << " " << fixed(cpu.nodes[i].second, 2)
              << " s";
  }
  std::cout << ")\n";
}

PhaseReport run_named(const std::string& name, const PhaseConfig& config) {
  PhaseReport report{name, config, run_with_progress(name, config), {}};
  report.latency = bench::summarize_latency(report.result.latencies_us);
  return report;
}

int run(const Context& ctx, const Options& o) {
  if (!ctx.json) {
    std::cout << "chorus bench " << o.mode << " against "
              << (o.phase.endpoint ? client::to_string(*o.phase.endpoint)
                                   : std::string("the leader (via the seeds)"))
              << " (streams " << o.stream_prefix << "-*, read stream " << o.phase.read_stream << ")"
              << std::endl;
  }
  std::vector<PhaseReport> reports;
  if (o.fill_events > 0 && o.mode != "write") {
    PhaseConfig fill = o.phase;
    fill.kind = PhaseKind::Write;
    fill.connections = o.fill_connections;
    fill.inflight = 1;
    fill.batch_events = o.fill_batch_events;
    fill.events_total = o.fill_events;
    fill.duration_s = 0;
    if (o.mode == "read-stream") fill.streams = {o.phase.read_stream};
    reports.push_back(run_named("fill", fill));
  }
  PhaseConfig config = o.phase;
  config.kind = o.mode == "write"         ? PhaseKind::Write
                : o.mode == "read-stream" ? PhaseKind::ReadStream
                                          : PhaseKind::ReadAll;
  std::string why_no_cpu;
  const std::vector<NodeCpu> cpu_before = sample_nodes(ctx, o, &why_no_cpu);
  reports.push_back(run_named(o.mode, config));
  const ServerCpu cpu = server_cpu_since(cpu_before, why_no_cpu);
  const PhaseReport& measured = reports.back();
  if (!ctx.json) {
    print_table(reports);
    print_server_cpu(cpu, measured.result.events);
  }
  Poco::JSON::Object::Ptr json =
      summary_json(measured.config, o.mode, measured.result, measured.latency);
  add_server_cpu(*json, cpu, measured.result.events);
  if (!o.label.empty()) json->set("label", o.label);
  print_json(json);
  int64_t problems = 0;
  for (const PhaseReport& r : reports) problems += problem_count(r.result);
  if (problems > 0) {
    throw Failure(std::to_string(problems) + " requests or connections did not succeed");
  }
  return kExitOk;
}

}  // namespace

int cmd_bench(const Context& ctx) {
  Options o;
  int connections = 0;
  po::options_description options("bench options");
  describe(options, o, connections);
  po::positional_options_description positional;
  positional.add("mode", 1);
  po::variables_map vm;
  if (!ctx.parse("bench write|read|read-all [options]", options, positional, vm)) return kExitOk;
  complete(ctx, o, connections);
  return run(ctx, o);
}

}  // namespace chorus::cli
