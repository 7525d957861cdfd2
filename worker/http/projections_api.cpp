// Projections routes (read side); see projections_api.hpp. Field names and shapes follow
// EventStore's ProjectionStatistics, which node-eventstore-client's ProjectionsManager and
// geteventstore-promise parse.
#include "worker/http/projections_api.hpp"

#include "worker/engine/engine.hpp"
#include "worker/http/engine_wait.hpp"
#include "worker/http/proxy.hpp"
#include "worker/http/streams_api.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/URI.h>

#include <algorithm>
#include <cctype>
#include <sstream>

namespace chorus::http {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

std::string tag(const Position& p) {
  return "C:" + std::to_string(p.commit) + "/P:" + std::to_string(p.prepare);
}

std::string stringify(const Object::Ptr& o) {
  std::ostringstream out;
  o->stringify(out);
  return out.str();
}

Object::Ptr status_object(const std::string& base_url, const projections::ProjectionStatus& s) {
  std::string escaped;
  Poco::URI::encode(s.name, "$/?#%&+ ", escaped);
  const std::string url = base_url + "/projection/" + escaped;
  Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("coreProcessingTime", s.core_processing_time_ms);
  o->set("version", s.version);
  o->set("epoch", s.epoch);
  o->set("effectiveName", s.name);
  o->set("writesInProgress", s.writes_in_progress);
  o->set("readsInProgress", s.reads_in_progress);
  o->set("partitionsCached", s.partitions_cached);
  o->set("status", s.status);
  o->set("stateReason", s.state_reason);
  o->set("name", s.name);
  o->set("mode", s.mode);
  o->set("position", tag(s.position));
  o->set("progress", s.progress);
  o->set("lastCheckpoint", tag(s.checkpoint));
  o->set("eventsProcessedAfterRestart", s.events_processed);
  o->set("statusUrl", url);
  o->set("stateUrl", url + "/state");
  o->set("resultUrl", url + "/result");
  o->set("queryUrl", url + "/query?config=yes");
  o->set("enableCommandUrl", url + "/command/enable");
  o->set("disableCommandUrl", url + "/command/disable");
  o->set("checkpointStatus", s.checkpoint_status);
  o->set("bufferedEvents", s.buffered_events);
  o->set("writePendingEventsBeforeCheckpoint", 0);
  o->set("writePendingEventsAfterCheckpoint", s.writes_in_progress);
  return o;
}

std::string list_json(const std::string& base_url,
                      const std::vector<projections::ProjectionStatus>& list) {
  Array::Ptr a = new Array;
  for (const auto& s : list) a->add(status_object(base_url, s));
  Object::Ptr o = new Object;
  o->set("projections", a);
  return stringify(o);
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// EventStore's reading of a yes/no query value: yes, true or 1 (any case) is on.
std::optional<bool> flag(const Request& request, const std::string& name) {
  const auto value = request.query_value(name);
  if (!value || value->empty()) return std::nullopt;
  const std::string v = lower(*value);
  if (v == "yes" || v == "true" || v == "1") return true;
  if (v == "no" || v == "false" || v == "0") return false;
  return std::nullopt;
}

}  // namespace

std::string projection_status_json(const std::string& base_url,
                                   const projections::ProjectionStatus& status) {
  return stringify(status_object(base_url, status));
}

ProjectionsApi::ProjectionsApi(Engine& engine,
                               std::function<std::optional<LeaderHttp>()> leader_http)
    : engine_(engine), leader_http_(std::move(leader_http)) {}

void ProjectionsApi::register_routes(Router& router) {
  for (const char* mode : {"any", "all-non-transient", "continuous", "onetime", "transient"}) {
    const std::string m = mode;
    router.add("GET", "/projections/" + m, [this, m](Request& r) { return list(r, m); });
  }
  router.add("GET", "/projection/{name}", [this](Request& r) { return one(r, false); });
  router.add("GET", "/projection/{name}/statistics", [this](Request& r) { return one(r, true); });
  router.add("GET", "/projection/{name}/state", [this](Request& r) { return state(r, false); });
  router.add("GET", "/projection/{name}/result", [this](Request& r) { return state(r, true); });
  router.add("GET", "/projection/{name}/query", [this](Request& r) { return query(r); });
  router.add("GET", "/projection/{name}/config", [this](Request& r) { return config(r); });
  router.add("PUT", "/projection/{name}/config", [this](Request& r) { return config(r); });
  router.add("DELETE", "/projection/{name}", [this](Request& r) { return remove(r); });
  router.add("PUT", "/projection/{name}/query", [this](Request& r) { return update_query(r); });
  router.add("POST", "/projection/{name}/command/{command}",
             [this](Request& r) { return command(r); });
  for (const char* mode : {"transient", "onetime", "continuous"}) {
    const std::string m = mode;
    router.add("POST", "/projections/" + m, [this, m](Request& r) { return create(r, m); });
  }
}

// Projections run on the leader: pass the request on (E3), or 307 when the client insists.
Reply ProjectionsApi::elsewhere(NotHandledReason reason, const Request& request) const {
  const auto leader =
      reason == NotHandledReason::NotLeader && leader_http_ ? leader_http_() : std::nullopt;
  if (!leader) return text_reply(503, "Server Is Not Ready");
  const auto required = request.header("ES-RequireMaster")
                            .value_or(request.header("ES-RequireLeader").value_or("false"));
  if (lower(required) == "true") return not_handled_reply(reason, request, leader_http_);
  return proxy_to_leader(leader->internal, request, leader->tls);
}

Reply ProjectionsApi::answer(const Request& request,
                             const std::optional<projections::ProjectionReply>& r, int ok_status,
                             const std::string& content_type) const {
  using projections::ProjectionOutcome;
  if (!r) return text_reply(503, "Server Is Too Busy");
  if (r->not_handled != NotHandledReason::None) return elsewhere(r->not_handled, request);
  switch (r->outcome) {
    case ProjectionOutcome::Ok: {
      Reply reply = json_reply(ok_status, r->body);
      reply.content_type = content_type;
      return reply;
    }
    case ProjectionOutcome::NotFound:
      return text_reply(404, r->message);
    case ProjectionOutcome::Exists:
      return text_reply(409, r->message);
    case ProjectionOutcome::AccessDenied:
      return unauthorized(r->message);
    case ProjectionOutcome::Invalid:
      break;
  }
  return text_reply(400, r->message);
}

Reply ProjectionsApi::create(Request& request, const std::string& mode) {
  if (request.who.anonymous()) return unauthorized("Creating a projection takes $admins or $ops.");
  const std::string type = lower(request.query_value("type").value_or("js"));
  if (type != "js") return text_reply(400, "Only JavaScript projections (type=JS) exist.");
  std::string name = request.query_value("name").value_or("");
  // A one-time projection may come without a name (node-eventstore-client's createOneTime):
  // EventStore names it with a new id.
  if (name.empty() && mode == "onetime") name = to_string(random_guid());
  const bool emit = flag(request, "emit").value_or(false);
  const bool track = emit && flag(request, "trackemittedstreams").value_or(false);
  auto r = wait_for_engine<projections::ProjectionReply>([&](auto done) {
    engine_.create_projection(request.who, mode, name, request.body, emit, track, std::move(done));
  });
  // Passed on to the leader: its answer names the projection (it names a one-time one itself).
  if (r && r->not_handled != NotHandledReason::None) return elsewhere(r->not_handled, request);
  Reply reply = answer(request, r, 201, "application/json");
  if (reply.status == 201) {
    std::string escaped;
    Poco::URI::encode(name, "$/?#%&+ ", escaped);
    reply.headers["Location"] = request.base_url + "/projection/" + escaped;
    reply.body = "{\"name\":\"" + escaped + "\"}";
  }
  return reply;
}

Reply ProjectionsApi::remove(Request& request) {
  if (request.who.anonymous()) return unauthorized("Deleting a projection takes $admins or $ops.");
  projections::ProjectionManagement m;
  m.kind = projections::ProjectionManagement::Kind::Delete;
  m.name = request.param("name");
  m.delete_state_stream = flag(request, "deleteStateStream").value_or(false);
  m.delete_checkpoint_stream = flag(request, "deleteCheckpointStream").value_or(false);
  m.delete_emitted_streams = flag(request, "deleteEmittedStreams").value_or(false);
  auto r = wait_for_engine<projections::ProjectionReply>(
      [&](auto done) { engine_.manage_projection(request.who, std::move(m), std::move(done)); });
  Reply reply = answer(request, r, 200, "application/json");
  if (reply.status == 200) reply.body = "{}";
  return reply;
}

Reply ProjectionsApi::command(Request& request) {
  if (request.who.anonymous()) return unauthorized("Commands take $admins or $ops.");
  const std::string name = request.param("command");
  if (name != "enable" && name != "disable" && name != "abort" && name != "reset") {
    return text_reply(404, "Unknown command " + name + ".");
  }
  auto r = wait_for_engine<projections::ProjectionReply>([&](auto done) {
    engine_.projection_command(request.who, request.param("name"), name, std::move(done));
  });
  Reply reply = answer(request, r, 200, "application/json");
  if (reply.status == 200) reply.body = "{}";
  return reply;
}

Reply ProjectionsApi::update_query(Request& request) {
  if (request.who.anonymous()) return unauthorized("Changing a query takes $admins or $ops.");
  const std::string type = lower(request.query_value("type").value_or("js"));
  if (type != "js") return text_reply(400, "Only JavaScript projections (type=JS) exist.");
  projections::ProjectionManagement m;
  m.kind = projections::ProjectionManagement::Kind::UpdateQuery;
  m.name = request.param("name");
  m.body = request.body;
  m.emit = flag(request, "emit");
  auto r = wait_for_engine<projections::ProjectionReply>(
      [&](auto done) { engine_.manage_projection(request.who, std::move(m), std::move(done)); });
  Reply reply = answer(request, r, 200, "application/json");
  if (reply.status == 200) reply.body = "{}";
  return reply;
}

Reply ProjectionsApi::state(Request& request, bool result) {
  if (request.who.anonymous()) return unauthorized("Projections are shown to signed-in users.");
  auto r = wait_for_engine<projections::ProjectionReply>([&](auto done) {
    engine_.projection_state(request.param("name"), request.query_value("partition").value_or(""),
                             result, std::move(done));
  });
  return answer(request, r, 200, "application/json");
}

Reply ProjectionsApi::query(Request& request) {
  if (request.who.anonymous()) return unauthorized("Projections are shown to signed-in users.");
  if (flag(request, "config").value_or(false)) {
    projections::ProjectionManagement m;
    m.kind = projections::ProjectionManagement::Kind::GetQueryConfig;
    m.name = request.param("name");
    auto r = wait_for_engine<projections::ProjectionReply>(
        [&](auto done) { engine_.manage_projection(request.who, std::move(m), std::move(done)); });
    return answer(request, r, 200, "application/json");
  }
  auto r = wait_for_engine<projections::ProjectionReply>(
      [&](auto done) { engine_.projection_query(request.param("name"), std::move(done)); });
  return answer(request, r, 200, "text/plain");
}

// GET and PUT /projection/{name}/config: $admins or $ops (EventStore's Ops level).
Reply ProjectionsApi::config(Request& request) {
  if (request.who.anonymous()) return unauthorized("A projection's config takes $admins or $ops.");
  projections::ProjectionManagement m;
  m.kind = request.method == "PUT" ? projections::ProjectionManagement::Kind::PutConfig
                                   : projections::ProjectionManagement::Kind::GetConfig;
  m.name = request.param("name");
  m.body = request.body;
  auto r = wait_for_engine<projections::ProjectionReply>(
      [&](auto done) { engine_.manage_projection(request.who, std::move(m), std::move(done)); });
  Reply reply = answer(request, r, 200, "application/json");
  if (reply.status == 200 && m.kind == projections::ProjectionManagement::Kind::PutConfig) {
    reply.body = "{}";
  }
  return reply;
}

std::optional<Reply> ProjectionsApi::fetch(Request& request,
                                           projections::ProjectionListResult& out) const {
  if (request.who.anonymous()) return unauthorized("Projections are shown to signed-in users.");
  auto result = wait_for_engine<projections::ProjectionListResult>(
      [&](auto done) { engine_.list_projections(std::move(done)); });
  if (!result) return text_reply(503, "Server Is Too Busy");
  if (result->not_handled == NotHandledReason::None) {
    out = std::move(*result);
    return std::nullopt;
  }
  // Projections run on the leader: pass the request on (E3), or 307 when the client insists.
  const auto leader = result->not_handled == NotHandledReason::NotLeader && leader_http_
                          ? leader_http_()
                          : std::nullopt;
  if (!leader) return text_reply(503, "Server Is Not Ready");
  const auto required = request.header("ES-RequireMaster")
                            .value_or(request.header("ES-RequireLeader").value_or("false"));
  if (lower(required) == "true")
    return not_handled_reply(result->not_handled, request, leader_http_);
  return proxy_to_leader(leader->internal, request, leader->tls);
}

Reply ProjectionsApi::list(Request& request, const std::string& mode) {
  projections::ProjectionListResult result;
  if (auto refused = fetch(request, result)) return *refused;
  std::vector<projections::ProjectionStatus> shown;
  for (auto& s : result.projections) {
    const bool continuous = s.mode == "Continuous";
    if (mode == "any" || (mode == "all-non-transient" && s.mode != "Transient") ||
        (mode == "continuous" && continuous) || (mode == "onetime" && s.mode == "OneTime") ||
        (mode == "transient" && s.mode == "Transient")) {
      shown.push_back(std::move(s));
    }
  }
  return json_reply(200, list_json(request.base_url, shown));
}

Reply ProjectionsApi::one(Request& request, bool statistics) {
  projections::ProjectionListResult result;
  if (auto refused = fetch(request, result)) return *refused;
  const std::string name = request.param("name");
  for (const auto& s : result.projections) {
    if (s.name != name) continue;
    if (statistics) return json_reply(200, list_json(request.base_url, {s}));
    return json_reply(200, projection_status_json(request.base_url, s));
  }
  return text_reply(404, "Projection " + name + " not found.");
}

}  // namespace chorus::http
