// SubscriptionsApi: EventStore's persistent-subscription HTTP routes (PROTOCOL.md E4): create,
// update and delete groups, list and info, competing-consumer reads as Atom with ack/nack links,
// acks and naks by event id, and replay of parked messages. Groups live on the leader: another
// node passes every such request on to it (E3). Handlers run on Poco request threads and block
// on the engine with a deadline.
#pragma once

#include "worker/http/request.hpp"
#include "worker/http/router.hpp"
#include "worker/subscriptions/persistent_api.hpp"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace chorus {
class Engine;
}

namespace chorus::http {

// Settings from a PUT/POST body (keys matched case-insensitively; absent keys take the HTTP
// defaults), or the reason the body is refused.
struct ParsedSettings {
  PersistentSettings settings;
  std::optional<std::string> error;
};
ParsedSettings parse_persistent_settings(const std::string& body);

// /info and list JSON of a group (E4); `base_url` is "http://host:port".
std::string group_info_json(const std::string& base_url, const PersistentGroupInfo& info);
std::string group_summaries_json(const std::string& base_url,
                                 const std::vector<PersistentGroupInfo>& groups);

class PrometheusText;
// Per group gauges for /metrics (labels stream and group).
void persistent_metrics(PrometheusText& out, const std::vector<PersistentGroupInfo>& groups);
// The leader's groups for /metrics, or nothing when this node does not lead (or is slow).
std::vector<PersistentGroupInfo> persistent_groups_for_metrics(Engine& engine);

class SubscriptionsApi {
 public:
  SubscriptionsApi(Engine& engine, std::function<std::optional<LeaderHttp>()> leader_http);
  void register_routes(Router& router);

 private:
  Reply elsewhere(NotHandledReason reason, const Request& request) const;
  Reply put_group(Request& request, bool create);
  Reply delete_group(Request& request);
  Reply list(Request& request, const std::string& stream);
  Reply info(Request& request);
  Reply read(Request& request, const std::string& count);
  Reply ack(Request& request, const std::string& ids, bool nack);
  Reply replay_parked(Request& request);

  Engine& engine_;
  const std::function<std::optional<LeaderHttp>()> leader_http_;
};

}  // namespace chorus::http
