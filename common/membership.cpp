// Gossip membership rules.
#include "common/membership.hpp"

#include <algorithm>
#include <unordered_set>

namespace chorus::cluster {

namespace {
const char* kEmptyGuid = "00000000-0000-0000-0000-000000000000";

bool has_instance_id(const MemberInfo& m) {
  return !m.instance_id.empty() && m.instance_id != kEmptyGuid;
}

// Two entries that name the same member: by instance id, or (database nodes) by the internal TCP
// endpoint that is their replication identity.
bool same_member(const MemberInfo& a, const MemberInfo& b) {
  if (has_instance_id(a) && a.instance_id == b.instance_id) return true;
  return !is_manager_or_seed(a) && !is_manager_or_seed(b) && member_node_id(a) == member_node_id(b);
}
}  // namespace

std::string member_key(const MemberInfo& m) {
  return m.internal_http_ip + ":" + std::to_string(m.internal_http_port);
}

std::string member_node_id(const MemberInfo& m) {
  return m.internal_tcp_ip + ":" + std::to_string(m.internal_tcp_port);
}

bool is_manager_or_seed(const MemberInfo& m) { return m.state == "Manager"; }

Membership::Membership(std::string cluster_name, MembershipTimes times)
    : cluster_name_(std::move(cluster_name)), times_(times) {}

void Membership::set_self(MemberInfo self) {
  self_key_ = member_key(self);
  self_ = std::move(self);
  members_.erase(self_key_);
}

void Membership::add_seed(const std::string& ip, int port, int64_t now_ms) {
  MemberInfo seed;
  seed.instance_id = kEmptyGuid;
  seed.state = "Manager";
  seed.is_alive = true;
  seed.internal_http_ip = seed.external_http_ip = seed.internal_tcp_ip = seed.external_tcp_ip = ip;
  seed.internal_http_port = seed.external_http_port = seed.internal_tcp_port =
      seed.external_tcp_port = port;
  const auto key = member_key(seed);
  if (key == self_key_ || members_.count(key)) return;
  members_[key] = Entry{seed, now_ms, true};
}

bool Membership::newer(const MemberInfo& candidate, const MemberInfo& current) {
  // Another instance at the same endpoints (a node restored into a wiped folder gets a fresh id):
  // only the entry the member stamped later counts. The old instance's higher epoch or writer
  // checkpoint, still in a third party's view, must not replace the new instance while it
  // catches up.
  if (has_instance_id(candidate) && has_instance_id(current) &&
      candidate.instance_id != current.instance_id) {
    return candidate.time_stamp > current.time_stamp;
  }
  if (candidate.epoch_number != current.epoch_number) {
    return candidate.epoch_number > current.epoch_number;
  }
  if (candidate.writer_checkpoint != current.writer_checkpoint) {
    return candidate.writer_checkpoint > current.writer_checkpoint;
  }
  return candidate.time_stamp > current.time_stamp;  // ISO-8601 UTC sorts as text
}

// A third party that saw the member die reports its last entry with isAlive false. Taking that
// word lets a member that never contacts it directly (the manager relay talks only to its own
// nodes and peers) stop listing a dead node as alive; the member's next entry is newer.
bool Membership::reports_death(const MemberInfo& candidate, const MemberInfo& current) {
  return !candidate.is_alive && current.is_alive && candidate.time_stamp == current.time_stamp;
}

bool Membership::claims_another(const MemberInfo& m, const std::string& key) const {
  if (same_member(m, self_)) return true;
  for (const auto& [other_key, e] : members_) {
    // A dead entry does not block: the member may have come back on other endpoints.
    if (other_key == key || e.seed || !e.info.is_alive) continue;
    if (same_member(m, e.info)) return true;
  }
  return false;
}

// The peer's entry about itself always wins; we just heard from it, so it is alive. Entries of
// the same member at other endpoints (stale, or forged by someone else) are dropped.
void Membership::merge_first_hand(const MemberInfo& m, const std::string& key, int64_t now_ms) {
  if (same_member(m, self_)) return;  // nobody else speaks as us
  std::erase_if(members_, [&](const auto& item) {
    return item.first != key && !item.second.seed && same_member(m, item.second.info);
  });
  if (!members_.count(key) && members_.size() >= kMembersMax) return;
  MemberInfo mine = m;
  mine.is_alive = true;
  members_[key] = Entry{mine, now_ms, false};
}

bool Membership::merge(const ClusterInfo& view, const std::string& peer_key, int64_t now_ms) {
  if (view.cluster_name != cluster_name_ && !view.cluster_name.empty()) return false;
  // A document that lists one member twice (no node writes one; the fuzzer did) counts its
  // first entry only: taking each in turn made the result depend on how often it was merged.
  std::unordered_set<std::string> seen;
  for (const auto& m : view.members) {
    const auto key = member_key(m);
    if (key == self_key_ || m.internal_http_port <= 0) continue;
    if (!seen.insert(key).second) continue;
    auto it = members_.find(key);
    if (key == peer_key) {
      merge_first_hand(m, key, now_ms);
      continue;
    }
    // A third party's word about a member that says otherwise itself (or about us): ignored.
    if (claims_another(m, key)) continue;
    if (it == members_.end()) {
      if (members_.size() >= kMembersMax) continue;
      members_[key] = Entry{m, now_ms, is_manager_or_seed(m) && m.instance_id == kEmptyGuid};
      continue;
    }
    if (it->second.seed && !is_manager_or_seed(m)) {
      it->second = Entry{m, now_ms, false};  // a real member replaces the seed placeholder
    } else if (newer(m, it->second.info) || reports_death(m, it->second.info)) {
      it->second.info = m;
      it->second.last_changed_ms = now_ms;
    }
  }
  // A peer that answered is alive even if it did not list itself (EventStore always does).
  if (auto it = members_.find(peer_key); it != members_.end() && !it->second.info.is_alive) {
    it->second.info.is_alive = true;
    it->second.last_changed_ms = now_ms;
  }
  return true;
}

bool Membership::heard_from(const std::string& key, const std::string& time_stamp, int64_t now_ms) {
  auto it = members_.find(key);
  if (it == members_.end() || it->second.seed) return false;
  MemberInfo& m = it->second.info;
  if (!m.is_alive) {
    m.is_alive = true;
    it->second.last_changed_ms = now_ms;
  }
  if (time_stamp > m.time_stamp) m.time_stamp = time_stamp;  // ISO-8601 UTC sorts as text
  return true;
}

void Membership::contact_failed(const std::string& key, int64_t now_ms) {
  auto it = members_.find(key);
  if (it == members_.end() || !it->second.info.is_alive) return;
  it->second.info.is_alive = false;
  it->second.last_changed_ms = now_ms;
}

void Membership::expire(int64_t now_ms) {
  for (auto it = members_.begin(); it != members_.end();) {
    const bool gone = !it->second.info.is_alive && !it->second.seed &&
                      now_ms - it->second.last_changed_ms > times_.dead_member_removal_ms;
    it = gone ? members_.erase(it) : std::next(it);
  }
}

ClusterInfo Membership::view() const {
  ClusterInfo out;
  out.cluster_name = cluster_name_;
  out.server_ip = self_.internal_http_ip;
  out.server_port = self_.internal_http_port;
  out.members.push_back(self_);
  for (const auto& [key, e] : members_) out.members.push_back(e.info);
  // The leader first: EventStore's clients rank states by name, and both generations of the
  // node client pick the first of equals (PROTOCOL.md H2).
  // Of two members claiming to lead (a stale entry of a deposed leader), the newer epoch first.
  std::stable_sort(out.members.begin(), out.members.end(), [](const auto& a, const auto& b) {
    const bool la = a.state == "Leader" && a.is_alive, lb = b.state == "Leader" && b.is_alive;
    if (la != lb) return la;
    return la && a.epoch_number > b.epoch_number;
  });
  return out;
}

std::vector<std::string> Membership::gossip_targets() const {
  std::vector<std::string> out;
  for (const auto& [key, e] : members_) out.push_back(key);
  return out;
}

std::vector<std::string> Membership::replication_peers() const {
  std::vector<std::string> out;
  for (const auto& [key, e] : members_) {
    if (!is_manager_or_seed(e.info) && !e.info.is_read_only_replica) {
      out.push_back(member_node_id(e.info));
    }
  }
  return out;
}

NodeIdentities Membership::live_node_identities() const {
  NodeIdentities out;
  for (const auto& [key, e] : members_) {
    if (is_manager_or_seed(e.info) || e.info.is_read_only_replica || !e.info.is_alive) continue;
    if (has_instance_id(e.info)) out.emplace_back(member_node_id(e.info), e.info.instance_id);
  }
  return out;
}

std::optional<MemberInfo> Membership::by_instance_id(const std::string& instance_id) const {
  if (self_.instance_id == instance_id) return self_;
  for (const auto& [key, e] : members_) {
    if (!is_manager_or_seed(e.info) && e.info.instance_id == instance_id) return e.info;
  }
  return std::nullopt;
}

std::optional<MemberInfo> Membership::by_node_id(const std::string& node_id) const {
  if (member_node_id(self_) == node_id) return self_;
  for (const auto& [key, e] : members_) {
    if (!is_manager_or_seed(e.info) && member_node_id(e.info) == node_id) return e.info;
  }
  return std::nullopt;
}

}  // namespace chorus::cluster
