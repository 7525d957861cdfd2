// Gossip model: the member document of EventStore's `GET /gossip?format=json` (ClusterInfoDto),
// with the union of the v5 and v20 member keys, and its JSON form (Poco JSON). Shared by the
// worker's HTTP endpoints, the cluster membership code and the manager. Plain data and pure
// functions; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace chorus {

struct MemberInfo {
  std::string instance_id;  // GUID text; empty GUID for seeds and managers
  std::string time_stamp;   // ISO-8601 UTC, e.g. "2020-09-02T13:53:24.234898Z"
  std::string state;        // v20 names: "Leader", "Follower", ..., "Manager"
  bool is_alive = true;
  std::string internal_tcp_ip;
  int internal_tcp_port = 0;
  int internal_secure_tcp_port = 0;
  std::string external_tcp_ip;
  int external_tcp_port = 0;
  int external_secure_tcp_port = 0;
  std::string internal_http_ip;
  int internal_http_port = 0;
  std::string external_http_ip;
  int external_http_port = 0;
  int64_t last_commit_position = 0;
  int64_t writer_checkpoint = 0;
  int64_t chaser_checkpoint = 0;
  int64_t epoch_position = -1;
  int64_t epoch_number = -1;
  std::string epoch_id = "00000000-0000-0000-0000-000000000000";
  int node_priority = 0;
  bool is_read_only_replica = false;  // v20
  // Chorus only ("externalHttpPortV5", written when set): the member's --ext-http-port-v5, whose
  // gossip uses EventStore 5's state names; 0 when it has none.
  int external_http_port_v5 = 0;
  // v20's httpEndPointIp/httpEndPointPort are written from the external HTTP pair.
  bool operator==(const MemberInfo&) const = default;
};

struct ClusterInfo {
  std::vector<MemberInfo> members;
  std::string server_ip;  // the answering node's internal HTTP endpoint
  int server_port = 0;
  // Chorus only ("clusterName"): gossip between clusters of different names is refused, so two
  // clusters never merge. Empty in documents from EventStore itself.
  std::string cluster_name;
  bool operator==(const ClusterInfo&) const = default;
};

// The JSON text of a ClusterInfoDto (camelCase keys, enums as strings).
std::string to_json(const ClusterInfo& info);
// Parses a ClusterInfoDto; missing keys keep their defaults; v20-only documents (httpEndPoint*)
// fill the external HTTP pair. nullopt with `error` set when the text is not such a document.
std::optional<ClusterInfo> cluster_info_from_json(const std::string& text, std::string* error);

// EventStore 5's name for a state (PROTOCOL.md D1): Leader -> Master, Follower -> Slave,
// PreLeader -> PreMaster; states v5 did not have become the nearest v5 state that a v5 client
// will not pick as its leader (ReadOnlyReplica -> Clone, DiscoverLeader -> Unknown, ...), so a
// v5 client's lookup of the name never fails. v5 names and unknown text map to themselves or
// Unknown.
std::string v5_state_name(const std::string& state);
// The document as v5 clients must see it: every state in v5 names, and each member that has an
// --ext-http-port-v5 advertising that port as its external HTTP port, so a v5 client that asks a
// member for gossip later (photon-pump, EventStore's v5 .NET client) meets v5 names there too.
// The order is kept (leader first).
ClusterInfo with_v5_state_names(ClusterInfo info);

// "YYYY-MM-DDTHH:MM:SS.ffffffZ" for a time in microseconds since the Unix epoch.
std::string iso8601_utc(int64_t unix_micros);

}  // namespace chorus
