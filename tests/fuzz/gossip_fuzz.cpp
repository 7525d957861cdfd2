// Fuzz target: a gossip document (ClusterInfoDto JSON) as a peer sends it, then the membership
// merge. Properties: parsing never throws and gives a value or an error; a parsed document
// survives to_json and back unchanged; our own entry is never replaced by a peer's claim; a view
// of another cluster merges nothing; merging the same view twice changes nothing more.
#include "common/gossip.hpp"
#include "common/membership.hpp"
#include "tests/fuzz/fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace {

using chorus::ClusterInfo;
using chorus::MemberInfo;
using chorus::cluster::Membership;

MemberInfo self_member() {
  MemberInfo self;
  self.instance_id = "4c1e8f2a-6d3b-4f5e-9a7c-0b1d2e3f4a5b";
  self.state = "Follower";
  self.internal_tcp_ip = self.external_tcp_ip = "127.0.0.1";
  self.internal_http_ip = self.external_http_ip = "127.0.0.1";
  self.internal_tcp_port = 1112;
  self.external_tcp_port = 1113;
  self.internal_http_port = 2112;
  self.external_http_port = 2113;
  return self;
}

bool has_self(const ClusterInfo& view, const MemberInfo& self) {
  for (const auto& m : view.members) {
    if (chorus::cluster::member_key(m) == chorus::cluster::member_key(self)) return m == self;
  }
  return false;
}

void check_merge(const ClusterInfo& info) {
  const MemberInfo self = self_member();
  Membership membership("fuzz");
  membership.set_self(self);
  membership.add_seed("127.0.0.2", 2112, 0);
  const ClusterInfo before = membership.view();
  const std::string peer =
      info.members.empty() ? "127.0.0.2:2112" : chorus::cluster::member_key(info.members[0]);
  const bool merged = membership.merge(info, peer, 1000);
  if (!merged) {
    FUZZ_CHECK(!info.cluster_name.empty() && info.cluster_name != "fuzz", "refused own cluster");
    FUZZ_CHECK(membership.view() == before, "a refused view changed the membership");
    return;
  }
  const ClusterInfo once = membership.view();
  FUZZ_CHECK(has_self(once, self), "a peer replaced our own entry");
  FUZZ_CHECK(membership.merge(info, peer, 1000), "second merge refused");
  FUZZ_CHECK(membership.view() == once, "merging the same view twice changed it");
  membership.contact_failed(peer, 2000);
  membership.expire(int64_t{1} << 40);
  FUZZ_CHECK(has_self(membership.view(), self), "expiry removed our own entry");
  for (const auto& node_id : membership.replication_peers()) {
    FUZZ_CHECK(membership.by_node_id(node_id).has_value(), "a peer without its member");
  }
  (void)membership.gossip_targets();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::string error;
  const auto info = chorus::cluster_info_from_json(text, &error);
  FUZZ_CHECK(info.has_value() || !error.empty(), "refused without an error");
  if (!info) return 0;
  std::string again_error;
  const auto again = chorus::cluster_info_from_json(chorus::to_json(*info), &again_error);
  FUZZ_CHECK(again.has_value(), "our own JSON does not parse back");
  FUZZ_CHECK(*again == *info, "to_json and back changed the document");
  check_merge(*info);
  return 0;
}
