// Scavenge endpoints: parameters, authorization, and the state as JSON.
#include "worker/http/scavenge_api.hpp"

#include "worker/engine/scavenger.hpp"

#include <Poco/JSON/Object.h>

#include <charconv>
#include <sstream>

namespace chorus::http {
namespace {

// Anonymous: 401 (log in); a user without $admins or $ops: 403.
std::optional<Reply> refusal(const Request& request) {
  if (request.who.anonymous()) {
    Reply reply = text_reply(401, "Access denied");
    reply.headers["WWW-Authenticate"] = "BasicCustom realm=\"ES\"";
    return reply;
  }
  if (!request.who.is_admin() && !request.who.in_role("$ops")) {
    return text_reply(403, "Access denied");
  }
  return std::nullopt;
}

// A query parameter as a number in [min, max]; `fallback` when absent; nullopt when invalid.
std::optional<int64_t> number_param(const Request& request, const std::string& name,
                                    int64_t fallback, int64_t min, int64_t max) {
  const auto text = request.query_value(name);
  if (!text || text->empty()) return fallback;
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || end != text->data() + text->size() || v < min || v > max) {
    return std::nullopt;
  }
  return v;
}

// The largest startFromChunk: chunk * kScavengeChunkBytes must stay a valid position.
constexpr int64_t kStartFromChunkMax = 1'000'000;

ScavengeLog log_through_leader(Engine& engine, HttpNode& node, const Principal& who) {
  const auto& append = node.config().append_system_events;
  if (append) {
    return [append, who](std::string stream, std::vector<NewEvent> events,
                         std::function<void(bool)> done) {
      append(who, std::move(stream), std::move(events), std::move(done));
    };
  }
  return
      [&engine](std::string stream, std::vector<NewEvent> events, std::function<void(bool)> done) {
        const Principal system{"$system", {"$admins"}};
        engine.append(
            system, std::move(stream), kExpectedAny, std::move(events),
            [done = std::move(done)](const WriteResult& r) {
              done(r.not_handled == NotHandledReason::None && r.result == OperationResult::Success);
            });
      };
}

Reply start(Request& request, Engine& engine, HttpNode& node) {
  if (auto refused = refusal(request)) return *refused;
  const auto chunk = number_param(request, "startFromChunk", 0, 0, kStartFromChunkMax);
  if (!chunk) {
    return text_reply(
        400, "startFromChunk must be a number from 0 to " + std::to_string(kStartFromChunkMax));
  }
  if (!number_param(request, "threads", 1, 1, kScavengeThreadsMax)) {
    return text_reply(400,
                      "threads must be a number from 1 to " + std::to_string(kScavengeThreadsMax));
  }
  const auto started = engine.start_scavenge(*chunk, log_through_leader(engine, node, request.who));
  if (!started.started) {
    if (started.id.empty()) return text_reply(503, "Scavenging is not available on this node");
    return text_reply(400, "Scavenge is already running: " + started.id);
  }
  Poco::JSON::Object o;
  o.set("scavengeId", started.id);
  std::ostringstream out;
  o.stringify(out);
  return json_reply(200, out.str());
}

Reply current(Request& request, Engine& engine) {
  if (auto refused = refusal(request)) return *refused;
  if (const auto state = engine.current_scavenge()) {
    return json_reply(200, scavenge_state_json(*state));
  }
  return json_reply(200, R"({"scavengeId":null,"scavengeResult":"Stopped"})");
}

Reply find(Request& request, Engine& engine) {
  if (auto refused = refusal(request)) return *refused;
  if (const auto state = engine.find_scavenge(request.param("id"))) {
    return json_reply(200, scavenge_state_json(*state));
  }
  return text_reply(404, "No scavenge with this id on this node");
}

Reply stop(Request& request, Engine& engine) {
  if (auto refused = refusal(request)) return *refused;
  const std::string id = request.param("id");
  if (!engine.stop_scavenge(id)) return text_reply(404, "No running scavenge with this id");
  Poco::JSON::Object o;
  o.set("scavengeId", id);
  std::ostringstream out;
  o.stringify(out);
  return json_reply(200, out.str());
}

}  // namespace

std::string scavenge_state_json(const ScavengeState& s) {
  Poco::JSON::Object o;
  o.set("scavengeId", s.id);
  o.set("nodeEndpoint", s.node_endpoint);
  o.set("scavengeResult", s.result);
  o.set("error", s.error);
  o.set("startedAt", s.started_ms);
  o.set("timeTakenMs", s.time_taken_ms);
  o.set("eventsExamined", s.events_examined);
  o.set("eventsRemoved", s.events_removed);
  o.set("spaceSavedBytes", s.space_saved_bytes);
  o.set("progressPercent", s.progress_percent());
  o.set("logPosition", s.scan_position);
  std::ostringstream out;
  o.stringify(out);
  return out.str();
}

void register_scavenge_routes(Router& router, Engine& engine, HttpNode& node) {
  router.add("POST", "/admin/scavenge",
             [&engine, &node](Request& r) { return start(r, engine, node); });
  router.add("GET", "/admin/scavenge/current",
             [&engine](Request& r) { return current(r, engine); });
  router.add("GET", "/admin/scavenge/{id}", [&engine](Request& r) { return find(r, engine); });
  router.add("DELETE", "/admin/scavenge/{id}", [&engine](Request& r) { return stop(r, engine); });
}

}  // namespace chorus::http
