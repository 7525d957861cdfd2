// ProjectionsApi: EventStore's projections HTTP API for what this cluster runs
// (docs/projections.md): GET /projections/any, all-non-transient, continuous, onetime and
// transient, GET /projection/{name} and its /statistics, /state, /result and /query; PUT
// /projection/{name}/query; POST
// /projections/transient|onetime|continuous, POST
// /projection/{name}/command/enable|disable|abort|reset and DELETE /projection/{name}. Projections
// run on the leader: another node passes each request on to it (E3). Any signed-in user may read;
// creating and deleting take $admins or $ops; anonymous requests are refused (401). Handlers run on
// Poco request threads and block on the engine with a deadline.
#pragma once

#include "worker/http/request.hpp"
#include "worker/http/router.hpp"
#include "worker/projections/status.hpp"

#include <functional>
#include <optional>
#include <string>

namespace chorus {
class Engine;
}

namespace chorus::http {

// EventStore's projection statistics JSON of one projection; `base_url` is "http://host:port".
std::string projection_status_json(const std::string& base_url,
                                   const projections::ProjectionStatus& status);

class ProjectionsApi {
 public:
  ProjectionsApi(Engine& engine, std::function<std::optional<LeaderHttp>()> leader_http);
  void register_routes(Router& router);

 private:
  // The leader's list, or the reply to send instead (refusal, forwarding, timeout).
  std::optional<Reply> fetch(Request& request, projections::ProjectionListResult& out) const;
  Reply list(Request& request, const std::string& mode);
  Reply one(Request& request, bool statistics);
  Reply elsewhere(NotHandledReason reason, const Request& request) const;
  Reply answer(const Request& request, const std::optional<projections::ProjectionReply>& r,
               int ok_status, const std::string& content_type) const;
  Reply create(Request& request, const std::string& mode);
  Reply remove(Request& request);
  Reply state(Request& request, bool result);
  Reply query(Request& request);
  Reply config(Request& request);
  Reply command(Request& request);
  Reply update_query(Request& request);

  Engine& engine_;
  const std::function<std::optional<LeaderHttp>()> leader_http_;
};

}  // namespace chorus::http
