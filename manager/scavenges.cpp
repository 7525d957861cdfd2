// Scavenges through the management API (see scavenges.hpp).
#include "manager/scavenges.hpp"

#include "manager/http_client.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/URI.h>

#include <chrono>
#include <optional>
#include <sstream>

namespace chorus::manager {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

constexpr const char* kAlreadyRunning = "Scavenge is already running";

std::string stringify(const Object::Ptr& o) {
  std::ostringstream out;
  o->stringify(out);
  return out.str();
}

ScavengeReply error(int status, const std::string& message) {
  Object::Ptr o = new Object;
  o->set("error", message);
  return {status, stringify(o)};
}

int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string host_for(const std::string& ip) { return ip == "0.0.0.0" ? "127.0.0.1" : ip; }

std::string encoded(const std::string& text) {
  std::string out;
  Poco::URI::encode(text, "/?#&=+", out);
  return out;
}

// A node's refusal or failure as this API's reply: its own status for 400/401/403, 409 when a
// scavenge already runs there, 502 for anything else.
ScavengeReply node_refusal(const std::string& node, const std::optional<HttpAnswer>& answer) {
  if (!answer) return error(502, node + " did not answer");
  const std::string text = node + ": " + answer->body.substr(0, 300);
  if (answer->body.rfind(kAlreadyRunning, 0) == 0) return error(409, text);
  if (answer->status == 400 || answer->status == 401 || answer->status == 403) {
    return error(answer->status, text);
  }
  return error(502, node + " answered " + std::to_string(answer->status) + ": " +
                        answer->body.substr(0, 300));
}

int64_t number_of(const Object::Ptr& o, const char* key) {
  if (!o || !o->has(key)) return 0;
  try {
    return o->getValue<int64_t>(key);
  } catch (const std::exception&) {
    return 0;
  }
}

}  // namespace

ScavengeJobs::ScavengeJobs(const ManagerConfig& config, const Supervisor& supervisor)
    : config_(config), supervisor_(supervisor) {}

ScavengeJobs::~ScavengeJobs() { stop(); }

std::optional<HttpAnswer> ScavengeJobs::call(const NodeSpec& spec, const std::string& method,
                                             const std::string& target,
                                             const std::string& auth_header) const {
  return http_request(method, host_for(spec.resolved.ext_ip), spec.resolved.ext_http_port, target,
                      "", {{"Authorization", auth_header}, {"Accept", "application/json"}},
                      kScavengeCallTimeoutMs, config_.http_client_tls);
}

// POST /admin/scavenge on the node; the new scavenge's id, or the reply that explains why not.
std::variant<std::string, ScavengeReply> ScavengeJobs::start_on(const NodeSpec& spec,
                                                                const std::string& auth_header,
                                                                const std::string& start_from_chunk,
                                                                const std::string& threads) {
  std::string target = "/admin/scavenge";
  std::string separator = "?";
  for (const auto& [name, value] :
       {std::pair{"startFromChunk", &start_from_chunk}, std::pair{"threads", &threads}}) {
    if (value->empty()) continue;
    target += separator + name + "=" + encoded(*value);
    separator = "&";
  }
  const auto answer = call(spec, "POST", target, auth_header);
  const Object::Ptr body =
      answer && answer->status == 200 ? parse_json_object(answer->body) : nullptr;
  if (!body || !body->has("scavengeId")) return node_refusal(spec.name, answer);
  const std::string id = body->getValue<std::string>("scavengeId");
  std::lock_guard lock(mutex_);
  node_scavenge_[spec.name] = id;
  return id;
}

ScavengeReply ScavengeJobs::start_node(const NodeView& node, const std::string& auth_header,
                                       const std::string& start_from_chunk,
                                       const std::string& threads) {
  const NodeSpec& spec = *node.spec;
  if (node.state != NodeState::kRunning) {
    return error(409, spec.name + " is not running (" + std::string(to_string(node.state)) + ")");
  }
  auto started = start_on(spec, auth_header, start_from_chunk, threads);
  if (auto* refused = std::get_if<ScavengeReply>(&started)) return *refused;
  Object::Ptr o = new Object;
  o->set("ok", true);
  o->set("node", spec.name);
  o->set("scavengeId", std::get<std::string>(started));
  return {200, stringify(o)};
}

ScavengeReply ScavengeJobs::node_progress(const NodeView& node, const std::string& auth_header) {
  const NodeSpec& spec = *node.spec;
  std::string id;
  {
    std::lock_guard lock(mutex_);
    if (auto it = node_scavenge_.find(spec.name); it != node_scavenge_.end()) id = it->second;
  }
  Object::Ptr o = new Object;
  o->set("node", spec.name);
  o->set("scavenge", Poco::Dynamic::Var());
  if (node.state != NodeState::kRunning) {
    o->set("error", spec.name + " is not running");
    return {200, stringify(o)};
  }
  const auto answer =
      call(spec, "GET", id.empty() ? "/admin/scavenge/current" : "/admin/scavenge/" + encoded(id),
           auth_header);
  if (answer && answer->status == 404) {
    o->set("error", spec.name + " no longer knows scavenge " + id + " (it restarted since)");
    return {200, stringify(o)};
  }
  const Object::Ptr state =
      answer && answer->status == 200 ? parse_json_object(answer->body) : nullptr;
  if (!state) return node_refusal(spec.name, answer);
  if (state->has("scavengeId") && !state->isNull("scavengeId")) o->set("scavenge", state);
  return {200, stringify(o)};
}

ScavengeReply ScavengeJobs::start_cluster(const std::string& cluster,
                                          const std::vector<NodeSpec>& order,
                                          const std::string& auth_header) {
  auto job = std::make_shared<Job>();
  job->cluster = cluster;
  job->started_unix_ms = unix_now_ms();
  job->order = order;
  job->auth_header = auth_header;
  for (const NodeSpec& s : order) {
    Step step;
    step.node = s.name;
    job->steps.push_back(step);
  }
  std::thread finished;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return error(503, "the manager is stopping");
    auto& slot = clusters_[cluster];
    if (slot && slot->state == "Running") {
      return error(409, "a scavenge of cluster " + cluster + " is already running");
    }
    if (slot) finished = std::move(slot->thread);
    slot = job;
    job->thread = std::thread([this, job] { run(job); });
  }
  if (finished.joinable()) finished.join();  // its job ended; only the thread's exit remains
  return cluster_progress(cluster);
}

ScavengeReply ScavengeJobs::cluster_progress(const std::string& cluster) {
  std::lock_guard lock(mutex_);
  const auto it = clusters_.find(cluster);
  if (it == clusters_.end()) {
    Object::Ptr o = new Object;
    o->set("cluster", cluster);
    o->set("state", "None");
    o->set("nodes", Array::Ptr(new Array));
    return {200, stringify(o)};
  }
  return {200, stringify(job_object(*it->second))};
}

// REQUIRES: mutex_ held.
Object::Ptr ScavengeJobs::job_object(const Job& job) const {
  Object::Ptr o = new Object;
  o->set("cluster", job.cluster);
  o->set("state", job.state);
  o->set("startedAt", job.started_unix_ms);
  o->set("finishedAt",
         job.finished_unix_ms ? Poco::Dynamic::Var(job.finished_unix_ms) : Poco::Dynamic::Var());
  int64_t saved = 0;
  int64_t removed = 0;
  Array::Ptr nodes = new Array;
  for (const Step& step : job.steps) {
    Object::Ptr n = new Object;
    n->set("node", step.node);
    n->set("state", step.state);
    n->set("scavengeId",
           step.scavenge_id.empty() ? Poco::Dynamic::Var() : Poco::Dynamic::Var(step.scavenge_id));
    n->set("error", step.error);
    n->set("progressPercent", step.last ? number_of(step.last, "progressPercent") : 0);
    n->set("eventsExamined", number_of(step.last, "eventsExamined"));
    n->set("eventsRemoved", number_of(step.last, "eventsRemoved"));
    n->set("spaceSavedBytes", number_of(step.last, "spaceSavedBytes"));
    n->set("timeTakenMs", number_of(step.last, "timeTakenMs"));
    saved += number_of(step.last, "spaceSavedBytes");
    removed += number_of(step.last, "eventsRemoved");
    nodes->add(n);
  }
  o->set("spaceSavedBytes", saved);
  o->set("eventsRemoved", removed);
  o->set("nodes", nodes);
  return o;
}

void ScavengeJobs::run(const std::shared_ptr<Job>& job) {
  bool all_succeeded = true;
  for (size_t i = 0; i < job->order.size(); ++i) {
    run_step(*job, i);
    std::lock_guard lock(mutex_);
    all_succeeded = all_succeeded && job->steps[i].state == "Success";
    if (stopping_) break;
  }
  std::lock_guard lock(mutex_);
  job->state = stopping_ ? "Stopped" : all_succeeded ? "Success" : "Failed";
  job->finished_unix_ms = unix_now_ms();
  job->auth_header.clear();
}

// Starts the scavenge of the job's node `index` and follows it until it ends.
void ScavengeJobs::run_step(Job& job, size_t index) {
  const NodeSpec& spec = job.order[index];
  auto set = [&](auto&& change) {
    std::lock_guard lock(mutex_);
    change(job.steps[index]);
  };
  const auto view = supervisor_.node(spec.name);
  if (!view || view->state != NodeState::kRunning) {
    return set([&](Step& s) {
      s.state = "Skipped";
      s.error = spec.name + " is not running";
    });
  }
  auto started = start_on(spec, job.auth_header, "", "");
  if (auto* refused = std::get_if<ScavengeReply>(&started)) {
    const Object::Ptr body = parse_json_object(refused->json);
    return set([&](Step& s) {
      s.state = "Failed";
      s.error = body ? body->optValue<std::string>("error", refused->json) : refused->json;
    });
  }
  const std::string id = std::get<std::string>(started);
  set([&](Step& s) {
    s.state = "Running";
    s.scavenge_id = id;
  });
  int64_t last_answer_ms = steady_now_ms();
  while (wait_poll()) {
    const auto answer = call(spec, "GET", "/admin/scavenge/" + encoded(id), job.auth_header);
    const Object::Ptr state =
        answer && answer->status == 200 ? parse_json_object(answer->body) : nullptr;
    if (state) {
      last_answer_ms = steady_now_ms();
      const std::string result = state->optValue<std::string>("scavengeResult", "InProgress");
      set([&](Step& s) {
        s.last = state;
        if (result != "InProgress") s.state = result;
        s.error = state->optValue<std::string>("error", "");
      });
      if (result != "InProgress") return;
      continue;
    }
    const bool forgotten = answer && answer->status == 404;
    if (forgotten || steady_now_ms() - last_answer_ms > kScavengeNodeSilenceMs) {
      return set([&](Step& s) {
        s.state = "Failed";
        s.error = forgotten ? spec.name + " restarted and no longer knows scavenge " + id
                            : spec.name + " stopped answering about scavenge " + id;
      });
    }
  }
  set([&](Step& s) { s.error = "the manager stopped following this scavenge"; });
}

bool ScavengeJobs::wait_poll() {
  std::unique_lock lock(mutex_);
  wake_.wait_for(lock, std::chrono::milliseconds(kScavengePollMs), [&] { return stopping_; });
  return !stopping_;
}

void ScavengeJobs::stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (auto& [cluster, job] : clusters_) threads.push_back(std::move(job->thread));
  }
  wake_.notify_all();
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
}

}  // namespace chorus::manager
