// Persistent-subscription routes; see subscriptions_api.hpp. Status codes follow EventStore's
// PersistentSubscriptionController: 201 created, 409 exists, 404 missing, 401 refused, 400 bad
// settings, 202 for acks and naks.
#include "worker/http/subscriptions_api.hpp"

#include "worker/engine/engine.hpp"
#include "worker/http/engine_wait.hpp"
#include "worker/http/feed.hpp"
#include "worker/http/headers.hpp"
#include "worker/http/metrics_text.hpp"
#include "worker/http/proxy.hpp"
#include "worker/http/streams_api.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/URI.h>

#include <algorithm>
#include <cctype>
#include <sstream>
#include <tuple>

namespace chorus::http {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string escaped(const std::string& text) {
  std::string out;
  Poco::URI::encode(text, "/?#%&+ ", out);
  return out;
}

std::string group_path(const std::string& stream, const std::string& group) {
  return "/subscriptions/" + escaped(stream) + "/" + escaped(group);
}

std::string stringify(const Object::Ptr& o) {
  std::ostringstream out;
  o->stringify(out);
  return out.str();
}

// Applies one body key (already lower-cased) to the settings.
void apply_key(PersistentSettings& s, const std::string& key, const Poco::Dynamic::Var& v,
               std::optional<bool>& prefer_round_robin, std::optional<std::string>& strategy) {
  if (v.isEmpty()) return;
  if (key == "resolvelinktos") s.resolve_link_tos = v.convert<bool>();
  if (key == "startfrom") s.start_from = v.convert<int64_t>();
  if (key == "messagetimeoutmilliseconds") s.message_timeout_ms = v.convert<int32_t>();
  if (key == "extrastatistics") s.extra_statistics = v.convert<bool>();
  if (key == "maxretrycount") s.max_retry_count = v.convert<int32_t>();
  if (key == "livebuffersize") s.live_buffer_size = v.convert<int32_t>();
  if (key == "buffersize") s.buffer_size = v.convert<int32_t>();
  if (key == "readbatchsize") s.read_batch_size = v.convert<int32_t>();
  if (key == "checkpointaftermilliseconds") s.checkpoint_after_ms = v.convert<int32_t>();
  if (key == "mincheckpointcount") s.min_checkpoint_count = v.convert<int32_t>();
  if (key == "maxcheckpointcount") s.max_checkpoint_count = v.convert<int32_t>();
  if (key == "maxsubscribercount") s.max_subscriber_count = v.convert<int32_t>();
  if (key == "preferroundrobin") prefer_round_robin = v.convert<bool>();
  if (key == "namedconsumerstrategy") strategy = v.convert<std::string>();
}

Object::Ptr config_object(const PersistentSettings& s) {
  Object::Ptr c = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  c->set("resolveLinktos", s.resolve_link_tos);
  c->set("startFrom", s.start_from);
  c->set("messageTimeoutMilliseconds", s.message_timeout_ms);
  c->set("extraStatistics", s.extra_statistics);
  c->set("maxRetryCount", s.max_retry_count);
  c->set("liveBufferSize", s.live_buffer_size);
  c->set("bufferSize", s.buffer_size);
  c->set("readBatchSize", s.read_batch_size);
  c->set("preferRoundRobin", s.strategy == ConsumerStrategy::RoundRobin);
  c->set("checkPointAfterMilliseconds", s.checkpoint_after_ms);
  c->set("minCheckPointCount", s.min_checkpoint_count);
  c->set("maxCheckPointCount", s.max_checkpoint_count);
  c->set("maxSubscriberCount", s.max_subscriber_count);
  c->set("namedConsumerStrategy", strategy_name(s.strategy));
  return c;
}

Object::Ptr link(const std::string& href, const char* rel) {
  Object::Ptr l = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  l->set("href", href);
  l->set("rel", rel);
  return l;
}

// The fields the list and /info share.
Object::Ptr summary_object(const std::string& base_url, const PersistentGroupInfo& g) {
  Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  const std::string path = base_url + group_path(g.stream, g.group);
  Array::Ptr links = new Array;
  links->add(link(path + "/info", "detail"));
  links->add(link(path + "/replayParked", "replayParked"));
  o->set("links", links);
  o->set("eventStreamId", g.stream);
  o->set("groupName", g.group);
  o->set("status", g.status);
  o->set("averageItemsPerSecond", g.rate_out_per_second);
  o->set("parkedMessageUri",
         base_url + "/streams/" +
             escaped("$persistentsubscription-" + g.stream + "::" + g.group + "-parked"));
  o->set("getMessagesUri", path);
  o->set("totalItemsProcessed", g.total_processed);
  o->set("lastProcessedEventNumber", g.last_processed_number);
  o->set("lastKnownEventNumber", g.last_known_number);
  o->set("connectionCount", static_cast<int64_t>(g.consumers.size()));
  o->set("totalInFlightMessages", g.in_flight);
  // Beyond EventStore: what makes a stuck or lagging group visible.
  o->set("lastCheckpointedEventNumber", g.last_checkpoint);
  o->set("parkedMessageCount", g.parked_count);
  o->set("oldestParkedMessageAgeMilliseconds", g.oldest_parked_age_ms);
  o->set("averageItemsPerSecondIn", g.rate_in_per_second);
  // After a leader change: the checkpoint this leader resumed from (null: the group was created
  // or updated here), the events after it that existed then (at most this many are delivered
  // again) and how many of those it has delivered so far.
  o->set("resumedFromCheckpoint",
         g.resumed ? Poco::Dynamic::Var(g.resumed->checkpoint) : Poco::Dynamic::Var());
  o->set("failoverRedeliveryBound", g.resumed ? g.resumed->bound : int64_t{0});
  o->set("failoverPossiblyRedelivered", g.resumed ? g.resumed->delivered : int64_t{0});
  return o;
}

std::optional<NakAction> parse_action(const std::optional<std::string>& text) {
  const std::string a = lower(text.value_or(""));
  if (a.empty()) return NakAction::Unknown;
  if (a == "park") return NakAction::Park;
  if (a == "retry") return NakAction::Retry;
  if (a == "skip") return NakAction::Skip;
  if (a == "stop") return NakAction::Stop;
  return std::nullopt;
}

std::optional<std::vector<Guid>> parse_ids(const std::string& text) {
  std::vector<Guid> ids;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string one = text.substr(start, comma - start);
    if (!one.empty()) {
      const auto id = parse_guid(one);
      if (!id) return std::nullopt;
      ids.push_back(*id);
    }
    start = comma + 1;
  }
  if (ids.empty()) return std::nullopt;
  return ids;
}

Reply timed_out() { return text_reply(503, "Server Is Too Busy"); }

}  // namespace

ParsedSettings parse_persistent_settings(const std::string& body) {
  ParsedSettings out;
  if (body.empty()) return out;
  try {
    Poco::JSON::Parser parser;
    auto parsed = parser.parse(body);
    auto object = parsed.extract<Object::Ptr>();
    std::optional<bool> prefer_round_robin;
    std::optional<std::string> strategy;
    for (const auto& [key, value] : *object) {
      apply_key(out.settings, lower(key), value, prefer_round_robin, strategy);
    }
    if (strategy) {
      const auto parsed_strategy = parse_strategy(*strategy);
      if (!parsed_strategy) {
        out.error = "unknown namedConsumerStrategy '" + *strategy + "'";
        return out;
      }
      out.settings.strategy = *parsed_strategy;
    } else if (prefer_round_robin && !*prefer_round_robin) {
      out.settings.strategy = ConsumerStrategy::DispatchToSingle;
    }
  } catch (const std::exception& e) {
    out.error = std::string("the body is not a JSON object of settings: ") + e.what();
  }
  return out;
}

std::string group_info_json(const std::string& base_url, const PersistentGroupInfo& g) {
  Object::Ptr o = summary_object(base_url, g);
  o->set("config", config_object(g.settings));
  o->set("countSinceLastMeasurement", 0);
  o->set("readBufferCount", g.read_buffer_count);
  o->set("liveBufferCount", 0);
  o->set("retryBufferCount", g.retry_buffer_count);
  o->set("outstandingMessagesCount", g.in_flight);
  Array::Ptr connections = new Array;
  for (const auto& c : g.consumers) {
    Object::Ptr conn = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    conn->set("from", c.from);
    conn->set("username", c.username);
    conn->set("averageItemsPerSecond", 0);
    conn->set("totalItemsProcessed", c.acked);
    conn->set("countSinceLastMeasurement", 0);
    // EventStore's list of {key, value} (milliseconds); empty without extraStatistics.
    Array::Ptr extra = new Array;
    for (const auto& m : c.extra_statistics) {
      Object::Ptr measurement = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
      measurement->set("key", m.key);
      measurement->set("value", m.value);
      extra->add(measurement);
    }
    conn->set("extraStatistics", extra);
    conn->set("availableSlots", std::max(0, c.slots - c.in_flight));
    conn->set("inFlightMessages", c.in_flight);
    connections->add(conn);
  }
  o->set("connections", connections);
  return stringify(o);
}

std::string group_summaries_json(const std::string& base_url,
                                 const std::vector<PersistentGroupInfo>& groups) {
  Array::Ptr list = new Array;
  for (const auto& g : groups) list->add(summary_object(base_url, g));
  std::ostringstream out;
  list->stringify(out);
  return out.str();
}

// /metrics waits this long for the groups, so a busy core thread does not stall scrapes.
constexpr int kMetricsWaitMs = 1000;

std::vector<PersistentGroupInfo> persistent_groups_for_metrics(Engine& engine) {
  const Principal system{"$system", {"$admins"}};
  auto result = wait_for_engine<PersistentListResult>(
      [&](auto done) { engine.persistent().list(system, "", std::move(done)); }, kMetricsWaitMs);
  if (!result || result->not_handled != NotHandledReason::None) return {};
  return std::move(result->groups);
}

void persistent_metrics(PrometheusText& out, const std::vector<PersistentGroupInfo>& groups) {
  if (groups.empty()) return;
  auto label = [](const PersistentGroupInfo& g) {
    auto quote = [](const std::string& text) {
      std::string q;
      for (char c : text) {
        if (c == '\\' || c == '"') q += '\\';
        q += c == '\n' ? ' ' : c;
      }
      return q;
    };
    return "stream=\"" + quote(g.stream) + "\",group=\"" + quote(g.group) + "\"";
  };
  using Get = double (*)(const PersistentGroupInfo&);
  const std::vector<std::tuple<const char*, const char*, Get>> families = {
      {"chorus_persistent_subscription_consumers", "Consumers connected to the group.",
       [](const PersistentGroupInfo& g) { return static_cast<double>(g.consumers.size()); }},
      {"chorus_persistent_subscription_in_flight", "Messages delivered and not yet acknowledged.",
       [](const PersistentGroupInfo& g) { return static_cast<double>(g.in_flight); }},
      {"chorus_persistent_subscription_behind_events",
       "Events of the stream not yet processed (last known - last processed).",
       [](const PersistentGroupInfo& g) {
         return static_cast<double>(
             std::max<int64_t>(0, g.last_known_number - g.last_processed_number));
       }},
      {"chorus_persistent_subscription_last_checkpoint", "Last checkpointed event number.",
       [](const PersistentGroupInfo& g) { return static_cast<double>(g.last_checkpoint); }},
      {"chorus_persistent_subscription_parked", "Parked messages.",
       [](const PersistentGroupInfo& g) { return static_cast<double>(g.parked_count); }},
      {"chorus_persistent_subscription_oldest_parked_age_seconds",
       "Age of the oldest parked message (0: none).",
       [](const PersistentGroupInfo& g) {
         return static_cast<double>(g.oldest_parked_age_ms) / 1000.0;
       }},
      {"chorus_persistent_subscription_processed_per_second",
       "Events acknowledged, skipped or parked per second (last measurement).",
       [](const PersistentGroupInfo& g) { return g.rate_out_per_second; }},
      {"chorus_persistent_subscription_failover_redelivery_bound",
       "Events after the checkpoint this leader resumed from that existed at load: at most this "
       "many are delivered again after the leader change (0: created or updated here).",
       [](const PersistentGroupInfo& g) {
         return g.resumed ? static_cast<double>(g.resumed->bound) : 0.0;
       }},
      {"chorus_persistent_subscription_failover_possibly_redelivered",
       "Of those events, how many this leader has delivered since it loaded the group.",
       [](const PersistentGroupInfo& g) {
         return g.resumed ? static_cast<double>(g.resumed->delivered) : 0.0;
       }},
      {"chorus_persistent_subscription_stuck",
       "1 when consumers are connected but nothing moved for a message timeout.",
       [](const PersistentGroupInfo& g) { return g.status == "Stuck" ? 1.0 : 0.0; }},
  };
  for (const auto& [name, help, get] : families) {
    std::vector<std::pair<std::string, double>> values;
    for (const auto& g : groups) values.emplace_back(label(g), get(g));
    out.samples(name, help, "gauge", values);
  }
}

SubscriptionsApi::SubscriptionsApi(Engine& engine,
                                   std::function<std::optional<LeaderHttp>()> leader_http)
    : engine_(engine), leader_http_(std::move(leader_http)) {}

void SubscriptionsApi::register_routes(Router& router) {
  router.add("GET", "/subscriptions", [this](Request& r) { return list(r, ""); });
  router.add("GET", "/subscriptions/{stream}",
             [this](Request& r) { return list(r, r.param("stream")); });
  router.add("GET", "/subscriptions/{stream}/{group}/info", [this](Request& r) { return info(r); });
  router.add("GET", "/subscriptions/{stream}/{group}", [this](Request& r) { return read(r, "1"); });
  router.add("GET", "/subscriptions/{stream}/{group}/{count}",
             [this](Request& r) { return read(r, r.param("count")); });
  router.add("PUT", "/subscriptions/{stream}/{group}",
             [this](Request& r) { return put_group(r, true); });
  router.add("POST", "/subscriptions/{stream}/{group}",
             [this](Request& r) { return put_group(r, false); });
  router.add("DELETE", "/subscriptions/{stream}/{group}",
             [this](Request& r) { return delete_group(r); });
  router.add("POST", "/subscriptions/{stream}/{group}/replayParked",
             [this](Request& r) { return replay_parked(r); });
  router.add("POST", "/subscriptions/{stream}/{group}/ack",
             [this](Request& r) { return ack(r, r.query_value("ids").value_or(""), false); });
  router.add("POST", "/subscriptions/{stream}/{group}/nack",
             [this](Request& r) { return ack(r, r.query_value("ids").value_or(""), true); });
  router.add("POST", "/subscriptions/{stream}/{group}/ack/{id}",
             [this](Request& r) { return ack(r, r.param("id"), false); });
  router.add("POST", "/subscriptions/{stream}/{group}/nack/{id}",
             [this](Request& r) { return ack(r, r.param("id"), true); });
}

// Groups live on the leader: every persistent-subscription request is passed on to it (E3).
Reply SubscriptionsApi::elsewhere(NotHandledReason reason, const Request& request) const {
  if (reason == NotHandledReason::TooBusy) return text_reply(503, "Server Is Too Busy");
  const auto leader =
      reason == NotHandledReason::NotLeader && leader_http_ ? leader_http_() : std::nullopt;
  if (!leader) return text_reply(503, "Server Is Not Ready");
  const auto required = request.header("ES-RequireMaster")
                            .value_or(request.header("ES-RequireLeader").value_or("false"));
  if (lower(required) == "true") return not_handled_reply(reason, request, leader_http_);
  return proxy_to_leader(leader->internal, request, leader->tls);
}

Reply SubscriptionsApi::put_group(Request& request, bool create) {
  const ParsedSettings parsed = parse_persistent_settings(request.body);
  if (parsed.error) return text_reply(400, *parsed.error);
  const std::string stream = request.param("stream");
  const std::string group = request.param("group");
  auto result = wait_for_engine<PersistentResult>([&](auto done) {
    if (create) {
      engine_.persistent().create(request.who, stream, group, parsed.settings, std::move(done));
    } else {
      engine_.persistent().update(request.who, stream, group, parsed.settings, std::move(done));
    }
  });
  if (!result) return timed_out();
  if (result->not_handled != NotHandledReason::None) {
    return elsewhere(result->not_handled, request);
  }
  switch (result->status) {
    case PersistentStatus::Success: {
      Reply reply = json_reply(create ? 201 : 200, "{}");
      reply.reason = create ? "Subscription group created" : "Subscription group updated";
      reply.headers["Location"] = request.base_url + group_path(stream, group);
      return reply;
    }
    case PersistentStatus::Exists:  // DoesNotExist shares the code
      return create ? text_reply(409, result->reason) : text_reply(404, result->reason);
    case PersistentStatus::AccessDenied:
      return unauthorized("Access denied.");
    case PersistentStatus::Fail:
      break;
  }
  return text_reply(400, result->reason);
}

Reply SubscriptionsApi::delete_group(Request& request) {
  auto result = wait_for_engine<PersistentResult>([&](auto done) {
    engine_.persistent().remove(request.who, request.param("stream"), request.param("group"),
                                std::move(done));
  });
  if (!result) return timed_out();
  if (result->not_handled != NotHandledReason::None) {
    return elsewhere(result->not_handled, request);
  }
  if (result->status == PersistentStatus::Success) return json_reply(200, "{}");
  if (result->status == PersistentStatus::AccessDenied) return unauthorized("Access denied.");
  if (result->not_found) return text_reply(404, result->reason);
  return text_reply(400, result->reason);
}

Reply SubscriptionsApi::list(Request& request, const std::string& stream) {
  auto result = wait_for_engine<PersistentListResult>(
      [&](auto done) { engine_.persistent().list(request.who, stream, std::move(done)); });
  if (!result) return timed_out();
  if (result->not_handled != NotHandledReason::None) {
    return elsewhere(result->not_handled, request);
  }
  return json_reply(200, group_summaries_json(request.base_url, result->groups));
}

Reply SubscriptionsApi::info(Request& request) {
  auto result = wait_for_engine<PersistentInfoResult>([&](auto done) {
    engine_.persistent().info(request.who, request.param("stream"), request.param("group"),
                              std::move(done));
  });
  if (!result) return timed_out();
  if (result->not_handled != NotHandledReason::None) {
    return elsewhere(result->not_handled, request);
  }
  if (result->status == PersistentStatus::AccessDenied) return unauthorized("Access denied.");
  if (!result->info) return text_reply(404, "Subscription group not found.");
  return json_reply(200, group_info_json(request.base_url, *result->info));
}

Reply SubscriptionsApi::read(Request& request, const std::string& count_text) {
  int32_t count = 0;
  try {
    count = std::stoi(count_text);
  } catch (const std::exception&) {
    return text_reply(400, "count must be a number");
  }
  if (count < 1 || count > kPersistentPullMax) {
    return text_reply(400, "count must be between 1 and " + std::to_string(kPersistentPullMax));
  }
  const std::string stream = request.param("stream");
  const std::string group = request.param("group");
  auto result = wait_for_engine<PersistentPullResult>([&](auto done) {
    engine_.persistent().pull(request.who, stream, group, count, std::move(done));
  });
  if (!result) return timed_out();
  if (result->not_handled != NotHandledReason::None) {
    return elsewhere(result->not_handled, request);
  }
  if (result->status == PersistentStatus::AccessDenied) return unauthorized("Access denied.");
  if (result->status != PersistentStatus::Success) {
    return text_reply(404, "Subscription group not found.");
  }
  std::vector<ResolvedEvent> events;
  for (const auto& item : result->items) events.push_back(*item.event);
  CompetingFeedRequest feed{request.base_url, stream, group, count,
                            parse_embed(request.query_value("embed"))};
  Reply reply = json_reply(200, competing_feed_json(feed, events));
  reply.content_type = "application/vnd.eventstore.competingatom+json; charset=utf-8";
  return reply;
}

Reply SubscriptionsApi::ack(Request& request, const std::string& ids_text, bool nack) {
  const auto ids = parse_ids(ids_text);
  if (!ids) return text_reply(400, "ids must be event ids (GUIDs) separated by commas");
  std::optional<NakAction> action;
  if (nack) {
    action = parse_action(request.query_value("action"));
    if (!action) return text_reply(400, "action must be one of park, retry, skip, stop");
  }
  auto result = wait_for_engine<PersistentResult>([&](auto done) {
    engine_.persistent().ack_ids(request.who, request.param("stream"), request.param("group"), *ids,
                                 action, std::move(done));
  });
  if (!result) return timed_out();
  if (result->not_handled != NotHandledReason::None) {
    return elsewhere(result->not_handled, request);
  }
  if (result->status == PersistentStatus::AccessDenied) return unauthorized("Access denied.");
  if (result->status != PersistentStatus::Success) return text_reply(404, result->reason);
  return text_reply(202, "Accepted");
}

Reply SubscriptionsApi::replay_parked(Request& request) {
  auto result = wait_for_engine<PersistentResult>([&](auto done) {
    engine_.persistent().replay_parked(request.who, request.param("stream"), request.param("group"),
                                       std::move(done));
  });
  if (!result) return timed_out();
  if (result->not_handled != NotHandledReason::None) {
    return elsewhere(result->not_handled, request);
  }
  if (result->status == PersistentStatus::AccessDenied) return unauthorized("Access denied.");
  if (result->not_found) return text_reply(404, result->reason);
  if (result->status != PersistentStatus::Success) return text_reply(500, result->reason);
  return json_reply(200, "{}");
}

}  // namespace chorus::http
