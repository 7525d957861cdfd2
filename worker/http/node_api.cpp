// Node endpoints (see node_api.hpp).
#include "worker/http/node_api.hpp"

#include "worker/engine/engine.hpp"
#include "worker/http/engine_wait.hpp"
#include "worker/http/limits.hpp"
#include "worker/http/metrics_text.hpp"
#include "worker/http/scavenge_api.hpp"
#include "worker/http/streams_api.hpp"
#include "worker/http/subscriptions_api.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <fcntl.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string_view>

namespace chorus::http {
namespace {

using Poco::JSON::Object;

int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string stringify(const Object::Ptr& object) {
  std::ostringstream out;
  object->stringify(out);
  return out.str();
}

Object::Ptr new_object() { return new Object(Poco::JSON_PRESERVE_KEY_ORDER); }

// /proc/self/stat is one line: the command name (at most 64 bytes in parentheses) and some 50
// numbers of at most 20 digits each, well under this.
constexpr size_t kProcStatBytesMax = 2048;

// /proc/self/stat with one read() (see process_facts_from_stat): the manager asks an idle node
// for /stats once a second (issue 16), and an ifstream, a string per field and stod cost about as
// much again as the kernel's part (~15 against ~8 us a call on the development VM).
ProcessFacts read_process_facts() {
  std::array<char, kProcStatBytesMax> buffer{};
  const int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  const ssize_t n = ::read(fd, buffer.data(), buffer.size());
  ::close(fd);
  if (n <= 0) return {};
  return process_facts_from_stat(std::string_view(buffer.data(), static_cast<size_t>(n)),
                                 ::sysconf(_SC_CLK_TCK), ::sysconf(_SC_PAGESIZE));
}

// The database's files (chorus.db, its -wal and -shm): from the space monitor's report, which
// reads their sizes at least every kDiskCheckIntervalMaxMs, rather than a listing of the folder
// on every /stats (issue 16); a node without one (unit tests) lists the folder.
int64_t database_bytes(const NodeConfig& config, const SpaceReport* space) {
  if (config.in_memory) return 0;
  if (space) return space->database_bytes;
  std::error_code ec;
  int64_t total = 0;
  for (const auto& entry : std::filesystem::directory_iterator(config.db_folder, ec)) {
    if (entry.is_regular_file(ec)) total += static_cast<int64_t>(entry.file_size(ec));
  }
  return total;
}

bool may_administer(const Principal& who) { return who.is_admin() || who.in_role("$ops"); }

bool hidden_option(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find("password") != std::string::npos;
}

Reply ping(Request&) { return json_reply(200, R"({"text":"Ping request successfully handled"})"); }

Reply health_refusal(const std::string& reason, const std::string& state) {
  Object::Ptr o = new_object();
  o->set("ready", false);
  o->set("reason", reason);
  o->set("state", state);
  return json_reply(503, stringify(o));
}

Reply health_live(Request& request, const HttpNode& node, Engine& engine) {
  if (node.stopping()) return text_reply(503, "Shutting down");
  const std::string problem =
      health_problem(false, engine.storage_failed(), engine.core_tick_age_ms(), "");
  if (!problem.empty()) return health_refusal(problem, engine.status().state);
  int code = 204;
  if (std::optional<std::string> live = request.query_value("liveCode")) {
    try {
      code = std::stoi(*live);
    } catch (const std::exception&) {
      return text_reply(400, "liveCode must be an HTTP status code");
    }
    if (code < 200 || code > 599) return text_reply(400, "liveCode must be an HTTP status code");
  }
  Reply reply;
  reply.status = code;
  return reply;
}

Reply health_ready(const HttpNode& node, Engine& engine) {
  const std::string state = engine.status().state;
  const std::string problem =
      health_problem(node.stopping(), engine.storage_failed(), engine.core_tick_age_ms(), state);
  if (!problem.empty()) return health_refusal(problem, state);
  Object::Ptr o = new_object();
  o->set("ready", true);
  o->set("state", state);
  return json_reply(200, stringify(o));
}

Reply info(const HttpNode& node, Engine& engine) {
  Object::Ptr features = new_object();
  features->set("projections", false);
  features->set("userManagement", false);
  features->set("atomPub", true);
  features->set("persistentSubscriptions", false);
  Object::Ptr root = new_object();
  root->set("esVersion", node.config().version);
  root->set("chorusVersion", node.config().version);
  std::string state = engine.status().state;
  std::transform(state.begin(), state.end(), state.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  root->set("state", state);
  root->set("features", features);
  return json_reply(200, stringify(root));
}

Reply info_options(const HttpNode& node) {
  Poco::JSON::Array::Ptr rows = new Poco::JSON::Array;
  for (const OptionRow& row : node.config().options) {
    Object::Ptr item = new_object();
    item->set("name", row.name);
    item->set("value", hidden_option(row.name) ? std::string("****") : row.value);
    item->set("source", row.source);
    rows->add(item);
  }
  std::ostringstream out;
  rows->stringify(out);
  return json_reply(200, out.str());
}

}  // namespace

// Fields 14/15 (utime, stime), 20 (num_threads) and 24 (rss pages), parsed in place. The command
// name (field 2) may hold spaces and parentheses: the fields start after its last ')'.
ProcessFacts process_facts_from_stat(std::string_view line, int64_t clock_ticks_per_second,
                                     int64_t page_bytes) {
  const size_t close = line.rfind(')');
  if (close == std::string_view::npos || clock_ticks_per_second <= 0) return {};
  std::array<int64_t, 25> field{};  // by field number; 3 is the state letter, 4..24 numbers
  size_t at = close + 2;
  for (size_t number = 3; number < field.size(); ++number) {
    const size_t end = std::min(line.find_first_of(" \n", at), line.size());
    if (at >= end) return {};
    if (number >= 4) {
      const auto parsed = std::from_chars(line.data() + at, line.data() + end, field[number]);
      if (parsed.ec != std::errc{} || parsed.ptr != line.data() + end) return {};
    }
    at = end + 1;
  }
  ProcessFacts facts;
  facts.cpu_seconds =
      static_cast<double>(field[14] + field[15]) / static_cast<double>(clock_ticks_per_second);
  facts.threads = field[20];
  facts.rss_bytes = field[24] * page_bytes;
  return facts;
}

std::string health_problem(bool stopping, bool storage_failed, int64_t core_tick_age_ms,
                           const std::string& ready_state) {
  if (stopping) return "shutting down";
  if (storage_failed) return "storage failed";
  if (core_tick_age_ms > kCoreTickStaleMs) {
    return "core thread has not ticked for " + std::to_string(core_tick_age_ms) + " ms";
  }
  if (!ready_state.empty() && ready_state != "Leader" && ready_state != "Follower") {
    return "not caught up (state " + ready_state + ")";
  }
  return "";
}

ClusterInfo single_node_cluster_info(const HttpNode& node, const NodeStatus& status,
                                     int64_t now_unix_micros) {
  const NodeConfig& config = node.config();
  MemberInfo self;
  self.instance_id = node.instance_id();
  self.time_stamp = iso8601_utc(now_unix_micros);
  self.state = status.state;
  self.is_alive = true;
  self.internal_tcp_ip = config.int_ip;
  self.internal_tcp_port = config.int_tcp_port;
  self.external_tcp_ip = config.ext_ip;
  self.external_tcp_port = config.ext_tcp_port;
  self.external_secure_tcp_port = config.ext_secure_tcp_port;
  self.internal_http_ip = config.int_ip;
  self.internal_http_port = config.int_http_port;
  self.external_http_ip = config.ext_ip;
  self.external_http_port = config.ext_http_port;
  self.external_http_port_v5 = config.ext_http_port_v5;
  self.last_commit_position = status.commit_checkpoint;
  self.writer_checkpoint = status.writer_checkpoint;
  self.chaser_checkpoint = status.chaser_checkpoint;
  self.epoch_position = status.epoch_position;
  self.epoch_number = status.epoch_number;
  self.epoch_id = to_string(status.epoch_id);
  self.node_priority = config.node_priority;
  ClusterInfo info;
  info.members.push_back(self);
  info.server_ip = config.int_ip;
  info.server_port = config.int_http_port;
  return info;
}

// Client write latency (WriteEvents over TCP and event POSTs over HTTP share the seconds
// buckets): the two histograms summed.
HistogramSnapshot write_durations(HttpNode& node) {
  HistogramSnapshot all = node.write_duration_seconds().snapshot();
  if (!node.config().tcp_write_durations) return all;
  const HistogramSnapshot tcp = node.config().tcp_write_durations();
  if (tcp.upper_bounds != all.upper_bounds) return all;
  for (size_t i = 0; i < all.counts.size() && i < tcp.counts.size(); ++i) {
    all.counts[i] += tcp.counts[i];
  }
  all.sum += tcp.sum;
  all.count += tcp.count;
  return all;
}

Object::Ptr histogram_object(const HistogramSnapshot& h) {
  Object::Ptr o = new_object();
  Poco::JSON::Array::Ptr bounds = new Poco::JSON::Array;
  for (double b : h.upper_bounds) bounds->add(b);
  Poco::JSON::Array::Ptr counts = new Poco::JSON::Array;
  for (int64_t c : h.counts) counts->add(c);
  o->set("upperBounds", bounds);  // seconds; the last count is above the last bound
  o->set("counts", counts);
  o->set("count", h.count);
  o->set("sumSeconds", h.sum);
  return o;
}

// Disk use of the database and free space of its volume (SpaceMonitor).
void space_metrics(PrometheusText& out, const SpaceReport& r) {
  out.gauge("chorus_storage_database_bytes", "Bytes of the database files (with -wal and -shm).",
            static_cast<double>(r.database_bytes));
  out.gauge("chorus_storage_wal_bytes", "Bytes of the database's write-ahead log file.",
            static_cast<double>(r.wal_bytes));
  out.gauge("chorus_storage_log_bytes",
            "Bytes of the log's tables (dbstat, refreshed each minute).",
            static_cast<double>(r.log_bytes));
  out.gauge("chorus_storage_index_bytes", "Bytes of the database's indexes (dbstat).",
            static_cast<double>(r.index_bytes));
  out.gauge("chorus_storage_reclaimable_bytes",
            "Free pages inside the database file: reused before it grows, or given back by a "
            "vacuum.",
            static_cast<double>(r.reclaimable_bytes));
  out.gauge("chorus_disk_free_bytes", "Free bytes of the data volume (for this process).",
            static_cast<double>(r.disk_free_bytes));
  out.gauge("chorus_disk_total_bytes", "Size of the data volume.",
            static_cast<double>(r.disk_total_bytes));
  out.gauge("chorus_disk_min_free_bytes", "--min-free-disk-bytes: below it writes are refused.",
            static_cast<double>(r.min_free_disk_bytes));
  out.gauge("chorus_writes_refused_low_disk", "1 while writes are refused for lack of disk space.",
            r.writes_refused ? 1 : 0);
}

Object::Ptr space_object(const SpaceReport& r) {
  Object::Ptr o = new_object();
  o->set("inMemory", r.in_memory);
  o->set("databaseBytes", r.database_bytes);
  o->set("walBytes", r.wal_bytes);
  o->set("logBytes", r.log_bytes);
  o->set("indexBytes", r.index_bytes);
  o->set("otherBytes", r.other_bytes);
  o->set("reclaimableBytes", r.reclaimable_bytes);
  o->set("pageSize", r.page_size);
  o->set("pageCount", r.page_count);
  Object::Ptr tables = new_object();
  for (const auto& [name, bytes] : r.table_bytes) tables->set(name, bytes);
  o->set("tableBytes", tables);
  o->set("breakdownAt", r.breakdown_known
                            ? Poco::Dynamic::Var(iso8601_utc(r.breakdown_unix_ms * 1000))
                            : Poco::Dynamic::Var());
  o->set("diskFreeBytes", r.disk_free_bytes);
  o->set("diskTotalBytes", r.disk_total_bytes);
  o->set("minFreeDiskBytes", r.min_free_disk_bytes);
  o->set("writesRefusedLowDisk", r.writes_refused);
  return o;
}

// The node's place in the cluster: role, epoch, elections and each follower's lag (leader).
void cluster_metrics(PrometheusText& out, const NodeStatus& status) {
  out.samples("chorus_node_state", "1 for this node's current state (EventStore's names).", "gauge",
              {{"state=\"" + status.state + "\"", 1}});
  out.gauge("chorus_epoch_number", "The epoch of this node's last epoch record.",
            static_cast<double>(status.epoch_number));
  out.counter("chorus_elections_total", "Elections this node started.",
              static_cast<double>(status.elections));
  std::vector<std::pair<std::string, double>> lag;
  for (const auto& [node_id, durable] : status.follower_durable) {
    lag.emplace_back("follower=\"" + node_id + "\"",
                     static_cast<double>(std::max<int64_t>(0, status.writer_checkpoint - durable)));
  }
  if (!lag.empty()) {
    out.samples("chorus_replication_lag_bytes",
                "Leader only: how far each follower's durable log is behind the leader's.", "gauge",
                lag);
  }
}

std::string metrics_text(HttpNode& node, const EngineStats& stats, const NodeStatus& status) {
  PrometheusText out;
  cluster_metrics(out, status);
  if (node.config().space) space_metrics(out, node.config().space());
  const ProcessFacts process = read_process_facts();
  const int tcp = node.config().tcp_connections ? node.config().tcp_connections() : 0;
  out.counter("chorus_io_events_written_total", "Events written to storage.",
              static_cast<double>(stats.events_written));
  out.counter("chorus_io_bytes_written_total", "Event bytes (data + metadata) written.",
              static_cast<double>(stats.bytes_written));
  out.counter("chorus_io_events_read_total", "Events read from storage.",
              static_cast<double>(stats.events_read));
  out.counter("chorus_io_bytes_read_total", "Event bytes (data + metadata) read.",
              static_cast<double>(stats.bytes_read));
  out.samples("chorus_checkpoints", "Log positions of this node's checkpoints.", "gauge",
              {{"name=\"writer\"", static_cast<double>(stats.writer_checkpoint)},
               {"name=\"chaser\"", static_cast<double>(stats.chaser_checkpoint)},
               {"name=\"commit\"", static_cast<double>(stats.commit_checkpoint)}});
  out.gauge("chorus_tcp_connections", "Open external TCP client connections.", tcp);
  if (node.config().tcp_partial_frame_bytes) {
    out.gauge("chorus_tcp_partial_frame_bytes",
              "Bytes of partially received TCP frames held across all connections; a frame that "
              "would pass their budget (256 MiB) is refused.",
              static_cast<double>(node.config().tcp_partial_frame_bytes()));
  }
  if (node.config().tcp_requests) {
    out.counter("chorus_tcp_requests_total", "External TCP client requests dispatched.",
                static_cast<double>(node.config().tcp_requests()));
  }
  if (node.config().tcp_request_durations) {
    out.histogram("chorus_tcp_request_duration_seconds",
                  "Time from a TCP client request to its reply.",
                  node.config().tcp_request_durations());
  }
  out.gauge("chorus_subscriptions", "Volatile subscriptions.",
            static_cast<double>(stats.subscriptions));
  out.counter("chorus_http_requests_total", "HTTP requests answered.",
              static_cast<double>(node.requests().load()));
  out.counter("chorus_http_requests_failed_total", "HTTP requests answered with a 5xx status.",
              static_cast<double>(node.requests_failed().load()));
  out.histogram("chorus_http_request_duration_seconds", "Time to answer an HTTP request.",
                node.request_duration_seconds().snapshot());
  out.counter("chorus_writer_flushes_total", "Storage transactions committed.",
              static_cast<double>(stats.flushes));
  out.counter("chorus_storage_checkpoint_failures_total",
              "WAL checkpoints into the database file that failed (the WAL keeps the writes; "
              "retried at the next commit): a failing disk shows here first.",
              static_cast<double>(stats.checkpoint_failures));
  out.histogram("chorus_write_duration_seconds",
                "Client writes (TCP WriteEvents, HTTP event POSTs), request to reply.",
                write_durations(node));
  out.histogram("chorus_writer_flush_duration_seconds",
                "Duration of one storage transaction (write + fsync).",
                stats.flush_duration_seconds);
  out.histogram("chorus_writer_flush_size_events", "Records per storage transaction.",
                stats.flush_size_events);
  out.gauge("chorus_replication_relaxed",
            "1 on a follower whose copy no commit needs now (the leader and the other followers "
            "make the majority): it writes what it is sent every " +
                std::to_string(kRelaxedWriteDelayUs / 1000) + " ms, in fewer transactions.",
            stats.replication_relaxed ? 1.0 : 0.0);
  out.counter("chorus_writer_relaxed_flushes_total",
              "Storage transactions a relaxed follower wrote after holding entries back.",
              static_cast<double>(stats.relaxed_flushes));
  out.gauge("chorus_proc_up_time_seconds", "Seconds since the process started.",
            static_cast<double>(now_micros() / 1000 - node.started_unix_ms()) / 1000.0);
  out.counter("chorus_proc_cpu_seconds_total", "CPU time used by the process.",
              process.cpu_seconds);
  out.gauge("chorus_proc_mem_bytes", "Resident memory of the process.",
            static_cast<double>(process.rss_bytes));
  out.gauge("chorus_proc_thread_count", "Threads of the process.",
            static_cast<double>(process.threads));
  return out.text();
}

NodeApi::NodeApi(Engine& engine, HttpNode& node, bool internal, bool v5_state_names)
    : engine_(engine), node_(node), internal_(internal), v5_state_names_(v5_state_names) {}

void NodeApi::register_routes(Router& router) {
  router.add("GET", "/gossip", [this](Request& r) { return gossip(r); });
  if (internal_) router.add("POST", "/gossip", [this](Request& r) { return gossip(r); });
  router.add("GET", "/ping", ping);
  router.add("GET", "/info", [this](Request&) { return info(node_, engine_); });
  // The effective options name files, addresses and limits: $admins and $ops only, as in
  // EventStore (its InfoController serves them at the Ops level).
  router.add("GET", "/info/options", [this](Request& r) {
    if (!may_administer(r.who)) return unauthorized("Access denied");
    return info_options(node_);
  });
  router.add("GET", "/stats", [this](Request& r) { return stats(r); });
  router.add("GET", "/health/live", [this](Request& r) { return health_live(r, node_, engine_); });
  router.add("GET", "/health/ready", [this](Request&) { return health_ready(node_, engine_); });
  router.add("GET", "/metrics", [this](Request&) {
    Reply reply = json_reply(200, metrics_text(node_, engine_.stats(), engine_.status()));
    PrometheusText groups;
    persistent_metrics(groups, persistent_groups_for_metrics(engine_));
    reply.body += groups.text();
    reply.content_type = kPrometheusContentType;
    return reply;
  });
  router.add("POST", "/admin/shutdown", [this](Request& r) { return admin_shutdown(r); });
  register_scavenge_routes(router, engine_, node_);
  router.add("POST", "/admin/node/resign", [this](Request& r) { return admin_resign(r); });
  router.add("POST", "/admin/members/replace", [this](Request& r) { return replace_member(r); });
}

// The manager's health listener: health and /stats only. Reaching the socket is the
// authorization (its folder is the manager's, mode 0700), so nothing else is served there.
void NodeApi::register_health_routes(Router& router) {
  router.add("GET", "/health/live", [this](Request& r) { return health_live(r, node_, engine_); });
  router.add("GET", "/health/ready", [this](Request&) { return health_ready(node_, engine_); });
  router.add("GET", "/stats", [this](Request& r) { return stats(r); });
}

// GET answers this node's view. POST (internal port) accepts a peer's view; until cluster
// membership exists it is only validated, and the answer is our view, as EventStore answers.
Reply NodeApi::gossip(Request& request) {
  const NodeConfig& config = node_.config();
  if (request.method == "POST") {
    const std::string signature = request.header(auth::kAuthHeader).value_or("");
    if (!config.cluster_secret.empty()) {
      const std::string problem =
          auth::verify_request(config.cluster_secret, request.method, request.path, request.body,
                               signature, auth::now_unix_ms(), node_.gossip_replay_guard());
      if (!problem.empty()) {
        std::cerr << "chorus-worker: gossip push refused: " << problem << std::endl;
        return text_reply(401, "Gossip refused: " + problem);
      }
    }
    std::string error;
    std::optional<Reply> reply;
    if (is_unchanged_gossip(request.body)) {
      reply = unchanged_gossip(request.body);
    } else {
      const auto view = cluster_info_from_json(request.body, &error);
      if (!view) return text_reply(400, "Malformed gossip: " + error);
      if (config.gossip_push) {
        const auto merged = config.gossip_push(*view, &error);
        if (!merged) return text_reply(409, "Gossip refused: " + error);
        reply = json_reply(200, to_json(*merged));
      }
    }
    if (reply) {
      if (reply->status == 200 && !config.cluster_secret.empty()) {
        reply->headers[auth::kAuthHeader] =
            auth::sign_answer(config.cluster_secret, signature, 200, reply->body);
      }
      return *reply;
    }
  }
  ClusterInfo view = config.gossip_view
                         ? config.gossip_view()
                         : single_node_cluster_info(node_, engine_.status(), now_micros());
  return json_reply(200, to_json(v5_state_names_ ? with_v5_state_names(std::move(view)) : view));
}

// An unchanged push (common/gossip_unchanged.hpp), its signature already checked.
Reply NodeApi::unchanged_gossip(const std::string& body) {
  std::string error;
  const auto push = unchanged_push_from_text(body, &error);
  if (!push) return text_reply(400, "Malformed gossip: " + error);
  const auto& handle = node_.config().gossip_unchanged;
  const UnchangedReply r =
      handle ? handle(*push) : UnchangedReply{UnchangedReply::Kind::kWantsWhole, {}, {}, {}};
  switch (r.kind) {
    case UnchangedReply::Kind::kUnchanged: {
      Reply reply;
      reply.content_type = "text/plain; charset=utf-8";
      reply.body = to_text(r.unchanged);
      return reply;
    }
    case UnchangedReply::Kind::kWholeView:
      return json_reply(200, to_json(r.view));
    case UnchangedReply::Kind::kRefused:
      return text_reply(409, "Gossip refused: " + r.error);
    case UnchangedReply::Kind::kWantsWhole:
      break;
  }
  return text_reply(kGossipWholeViewStatus, "Gossip: this node holds no view from " + push->sender +
                                                "; push the whole view");
}

Reply NodeApi::stats(Request&) { return json_reply(200, stats_json()); }

std::string NodeApi::stats_json() {
  const EngineStats stats = engine_.stats();
  const ProcessFacts facts = read_process_facts();
  Object::Ptr process = new_object();
  process->set("pid", static_cast<int64_t>(::getpid()));
  process->set("startTime", iso8601_utc(node_.started_unix_ms() * 1000));
  process->set("uptimeSeconds", (now_micros() / 1000 - node_.started_unix_ms()) / 1000.0);
  process->set("cpuSeconds", facts.cpu_seconds);
  process->set("rssBytes", facts.rss_bytes);
  process->set("threads", facts.threads);
  Object::Ptr storage = new_object();
  storage->set("writerCheckpoint", stats.writer_checkpoint);
  storage->set("chaserCheckpoint", stats.chaser_checkpoint);
  storage->set("commitCheckpoint", stats.commit_checkpoint);
  std::optional<SpaceReport> space;
  if (node_.config().space) space = node_.config().space();
  storage->set("dbSizeBytes", database_bytes(node_.config(), space ? &*space : nullptr));
  storage->set("inMemory", node_.config().in_memory);
  storage->set("eventsWritten", stats.events_written);
  storage->set("bytesWritten", stats.bytes_written);
  storage->set("eventsRead", stats.events_read);
  storage->set("bytesRead", stats.bytes_read);
  storage->set("flushes", stats.flushes);
  if (space) storage->set("space", space_object(*space));
  const NodeStatus status = engine_.status();
  Object::Ptr cluster = new_object();
  cluster->set("state", status.state);
  cluster->set("isLeader", status.is_leader);
  if (status.leader_id) cluster->set("leader", *status.leader_id);
  cluster->set("epochNumber", status.epoch_number);
  cluster->set("epochPosition", status.epoch_position);
  cluster->set("epochId", to_string(status.epoch_id));
  cluster->set("elections", status.elections);
  Poco::JSON::Array::Ptr followers = new Poco::JSON::Array;
  for (const auto& [node_id, durable] : status.follower_durable) {
    Object::Ptr f = new_object();
    f->set("node", node_id);
    f->set("durableCheckpoint", durable);
    f->set("lagBytes", std::max<int64_t>(0, status.writer_checkpoint - durable));
    add_lag_in_events(f, durable, status.writer_checkpoint);
    followers->add(f);
  }
  cluster->set("followers", followers);
  Object::Ptr connections = new_object();
  connections->set("tcp", node_.config().tcp_connections ? node_.config().tcp_connections() : 0);
  connections->set("subscriptions", stats.subscriptions);
  connections->set("httpRequests", node_.requests().load());
  Object::Ptr latency = new_object();
  latency->set("writes", histogram_object(write_durations(node_)));
  Object::Ptr root = new_object();
  root->set("process", process);
  root->set("storage", storage);
  root->set("connections", connections);
  root->set("latency", latency);
  root->set("cluster", cluster);
  return stringify(root);
}

// A follower's lag as events (committed events between its durable end and `writer`, the
// leader's end when lagBytes was taken, at most kLagEventsCountMax) and as time (the age of the
// oldest of them), read from $all here. Events written after `writer` are not counted, so the
// three figures describe the same moment.
void NodeApi::add_lag_in_events(Object::Ptr& follower, int64_t durable, int64_t writer) {
  if (durable >= writer) {  // caught up: nothing to read
    follower->set("lagEvents", 0);
    follower->set("lagEventsCapped", false);
    follower->set("lagMs", 0);
    return;
  }
  const Principal system{"$system", {"$admins"}};
  const auto read = wait_for_engine<ReadAllResult>(
      [&](auto done) {
        engine_.read_all(system, Position{durable, durable}, kLagEventsCountMax, true, false,
                         std::move(done));
      },
      kLagReadWaitMs);
  if (!read || read->status != ReadAllStatus::Success) return;
  int32_t count = 0;
  for (const ResolvedEvent& e : read->events) {
    if (e.original().position.prepare < writer) ++count;
  }
  follower->set("lagEvents", count);
  follower->set("lagEventsCapped", count >= kLagEventsCountMax);
  int64_t lag_ms = 0;
  if (count > 0) {
    const int64_t oldest_ms = read->events.front().original().created_ms;
    lag_ms = std::max<int64_t>(0, now_micros() / 1000 - oldest_ms);
  }
  follower->set("lagMs", lag_ms);
}

Reply NodeApi::admin_shutdown(Request& request) {
  if (!may_administer(request.who)) return unauthorized("Access denied");
  Reply reply = json_reply(200, "{}");
  // After the answer is sent: stopping the node closes every HTTP connection, this one too.
  reply.after_sent = node_.config().request_shutdown;
  return reply;
}

// The leader steps down so that another node wins the next election (rolling restarts).
Reply NodeApi::admin_resign(Request& request) {
  if (!may_administer(request.who)) return unauthorized("Access denied");
  if (!engine_.status().is_leader)
    return json_reply(409, R"({"error":"This node is not the leader."})");
  engine_.resign();
  return json_reply(200, R"({"resigned":true})");
}

// An operator moves a dead member's seat to a new node (docs/operations.md): $admins only, as it
// decides who votes. The replacement is written to $voters through the leader and answered once
// committed; every member (this one too) applies it from there (worker/main.cpp).
Reply NodeApi::replace_member(Request& request) {
  if (request.who.anonymous()) return unauthorized("Access denied");
  if (!request.who.is_admin()) return text_reply(403, "Replacing a member needs $admins");
  const auto& plan = node_.config().plan_member_replacement;
  const auto& append = node_.config().append_system_events;
  if (!plan || !append) return text_reply(409, "This node is not part of a cluster");
  std::string seat, endpoint, instance_id;
  try {
    const auto body = Poco::JSON::Parser().parse(request.body).extract<Poco::JSON::Object::Ptr>();
    seat = body->optValue<std::string>("seat", "");
    endpoint = body->optValue<std::string>("endpoint", "");
    instance_id = body->optValue<std::string>("instanceId", "");
  } catch (const Poco::Exception& e) {
    return text_reply(
        400, "Expected {\"seat\":..., \"instanceId\":..., \"endpoint\":...}: " + e.displayText());
  }
  if (seat.empty() || instance_id.empty()) {
    return text_reply(400,
                      "seat (the old member's instance id or internal TCP endpoint) and "
                      "instanceId (the new member's) are required");
  }
  std::string error;
  std::optional<SystemEvent> event = plan(seat, endpoint, instance_id, &error);
  if (!event) return text_reply(409, error);
  const std::string data = event->event.data;
  const std::optional<bool> written = wait_for_engine<bool>(
      [&](auto done) { append(request.who, event->stream, {event->event}, std::move(done)); });
  if (!written || !*written) {
    return text_reply(503,
                      "The replacement was not committed (no leader, or no quorum of the "
                      "other members): try again");
  }
  return json_reply(200, data);
}

}  // namespace chorus::http
