// JSON form of the gossip document (see gossip.hpp), with Poco JSON.
#include "common/gossip.hpp"

#include <Poco/Dynamic/Var.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <cstdio>
#include <ctime>
#include <exception>
#include <functional>
#include <map>
#include <sstream>

namespace chorus {
namespace {

Poco::JSON::Object::Ptr member_to_object(const MemberInfo& m) {
  Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("instanceId", m.instance_id);
  o->set("timeStamp", m.time_stamp);
  o->set("state", m.state);
  o->set("isAlive", m.is_alive);
  o->set("internalTcpIp", m.internal_tcp_ip);
  o->set("internalTcpPort", m.internal_tcp_port);
  o->set("internalSecureTcpPort", m.internal_secure_tcp_port);
  o->set("externalTcpIp", m.external_tcp_ip);
  o->set("externalTcpPort", m.external_tcp_port);
  o->set("externalSecureTcpPort", m.external_secure_tcp_port);
  o->set("internalHttpIp", m.internal_http_ip);
  o->set("internalHttpPort", m.internal_http_port);
  o->set("externalHttpIp", m.external_http_ip);
  o->set("externalHttpPort", m.external_http_port);
  o->set("httpEndPointIp", m.external_http_ip);
  o->set("httpEndPointPort", m.external_http_port);
  o->set("lastCommitPosition", m.last_commit_position);
  o->set("writerCheckpoint", m.writer_checkpoint);
  o->set("chaserCheckpoint", m.chaser_checkpoint);
  o->set("epochPosition", m.epoch_position);
  o->set("epochNumber", m.epoch_number);
  o->set("epochId", m.epoch_id);
  o->set("nodePriority", m.node_priority);
  o->set("isReadOnlyReplica", m.is_read_only_replica);
  if (m.external_http_port_v5 > 0) o->set("externalHttpPortV5", m.external_http_port_v5);
  return o;
}

template <typename T>
void read_key(const Poco::JSON::Object& o, const char* key, T& out) {
  if (o.has(key) && !o.isNull(key)) out = o.getValue<T>(key);
}

MemberInfo member_from_object(const Poco::JSON::Object& o) {
  MemberInfo m;
  read_key(o, "instanceId", m.instance_id);
  read_key(o, "timeStamp", m.time_stamp);
  read_key(o, "state", m.state);
  read_key(o, "isAlive", m.is_alive);
  read_key(o, "internalTcpIp", m.internal_tcp_ip);
  read_key(o, "internalTcpPort", m.internal_tcp_port);
  read_key(o, "internalSecureTcpPort", m.internal_secure_tcp_port);
  read_key(o, "externalTcpIp", m.external_tcp_ip);
  read_key(o, "externalTcpPort", m.external_tcp_port);
  read_key(o, "externalSecureTcpPort", m.external_secure_tcp_port);
  read_key(o, "httpEndPointIp", m.external_http_ip);
  read_key(o, "httpEndPointPort", m.external_http_port);
  read_key(o, "internalHttpIp", m.internal_http_ip);
  read_key(o, "internalHttpPort", m.internal_http_port);
  read_key(o, "externalHttpIp", m.external_http_ip);
  read_key(o, "externalHttpPort", m.external_http_port);
  read_key(o, "lastCommitPosition", m.last_commit_position);
  read_key(o, "writerCheckpoint", m.writer_checkpoint);
  read_key(o, "chaserCheckpoint", m.chaser_checkpoint);
  read_key(o, "epochPosition", m.epoch_position);
  read_key(o, "epochNumber", m.epoch_number);
  read_key(o, "epochId", m.epoch_id);
  read_key(o, "nodePriority", m.node_priority);
  read_key(o, "isReadOnlyReplica", m.is_read_only_replica);
  read_key(o, "externalHttpPortV5", m.external_http_port_v5);
  return m;
}

}  // namespace

std::string to_json(const ClusterInfo& info) {
  Poco::JSON::Object root(Poco::JSON_PRESERVE_KEY_ORDER);
  Poco::JSON::Array::Ptr members = new Poco::JSON::Array;
  for (const MemberInfo& m : info.members) members->add(member_to_object(m));
  root.set("members", members);
  root.set("serverIp", info.server_ip);
  root.set("serverPort", info.server_port);
  if (!info.cluster_name.empty()) root.set("clusterName", info.cluster_name);
  std::ostringstream out;
  root.stringify(out);
  return out.str();
}

std::optional<ClusterInfo> cluster_info_from_json(const std::string& text, std::string* error) {
  try {
    Poco::JSON::Parser parser;
    const Poco::Dynamic::Var parsed = parser.parse(text);
    const Poco::JSON::Object::Ptr root = parsed.extract<Poco::JSON::Object::Ptr>();
    ClusterInfo info;
    const Poco::JSON::Array::Ptr members = root->getArray("members");
    if (members.isNull()) {
      if (error != nullptr) *error = "no members array";
      return std::nullopt;
    }
    for (size_t i = 0; i < members->size(); ++i) {
      const Poco::JSON::Object::Ptr m = members->getObject(static_cast<unsigned>(i));
      if (m.isNull()) {
        if (error != nullptr) *error = "member " + std::to_string(i) + " is not an object";
        return std::nullopt;
      }
      info.members.push_back(member_from_object(*m));
    }
    read_key(*root, "serverIp", info.server_ip);
    read_key(*root, "serverPort", info.server_port);
    read_key(*root, "clusterName", info.cluster_name);
    return info;
  } catch (const Poco::Exception& e) {
    if (error != nullptr) *error = e.displayText();
  } catch (const std::exception& e) {
    if (error != nullptr) *error = e.what();
  }
  return std::nullopt;
}

std::string v5_state_name(const std::string& state) {
  // v20 -> v5. Every v5 name (EventStore 5's VNodeState) also maps to itself, so a document
  // converted twice is unchanged.
  static const std::map<std::string, std::string, std::less<>> kNames = {
      {"Initializing", "Initializing"},
      {"DiscoverLeader", "Unknown"},
      {"Unknown", "Unknown"},
      {"PreReplica", "PreReplica"},
      {"CatchingUp", "CatchingUp"},
      {"Clone", "Clone"},
      {"Follower", "Slave"},
      {"Slave", "Slave"},
      {"PreLeader", "PreMaster"},
      {"PreMaster", "PreMaster"},
      {"Leader", "Master"},
      {"Master", "Master"},
      {"Manager", "Manager"},
      {"ShuttingDown", "ShuttingDown"},
      {"Shutdown", "Shutdown"},
      // A leader handing over must not look like the leader to a v5 client.
      {"ResigningLeader", "Unknown"},
      {"ReadOnlyLeaderless", "Unknown"},
      {"PreReadOnlyReplica", "PreReplica"},
      // v5's Clone is the closest: a replica that never leads, ranked below Slave.
      {"ReadOnlyReplica", "Clone"},
  };
  const auto it = kNames.find(state);
  return it == kNames.end() ? "Unknown" : it->second;
}

ClusterInfo with_v5_state_names(ClusterInfo info) {
  for (MemberInfo& m : info.members) {
    m.state = v5_state_name(m.state);
    if (m.external_http_port_v5 > 0) m.external_http_port = m.external_http_port_v5;
  }
  return info;
}

std::string iso8601_utc(int64_t unix_micros) {
  const std::time_t seconds = static_cast<std::time_t>(unix_micros / 1000000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[96];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(((unix_micros % 1000000) + 1000000) % 1000000));
  return text;
}

}  // namespace chorus
