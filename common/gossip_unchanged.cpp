// Unchanged gossip pushes (see gossip_unchanged.hpp).
#include "common/gossip_unchanged.hpp"

#include <charconv>
#include <vector>

namespace chorus {
namespace {

constexpr std::string_view kPushLine = "chorus-gossip-unchanged-push";
constexpr std::string_view kAnswerLine = "chorus-gossip-unchanged-answer";
constexpr size_t kPushFields = 6;  // the first line, then five fields
constexpr size_t kAnswerFields = 3;

class Fnv {
 public:
  void bytes(std::string_view s) {
    number(static_cast<int64_t>(s.size()));  // the length first: "ab"+"c" differs from "a"+"bc"
    for (const char c : s) mix(static_cast<unsigned char>(c));
  }
  void number(int64_t v) {
    for (int i = 0; i < 8; ++i)
      mix(static_cast<unsigned char>((static_cast<uint64_t>(v) >> (8 * i))));
  }
  uint64_t value() const { return hash_ == 0 ? 1 : hash_; }  // 0 means "none" in DigestBook

 private:
  void mix(unsigned char c) {
    hash_ ^= c;
    hash_ *= 1099511628211ULL;
  }
  uint64_t hash_ = 14695981039346656037ULL;
};

std::string hex(uint64_t v) {
  char text[16];
  const auto end = std::to_chars(text, text + sizeof text, v, 16).ptr;
  return std::string(text, end);
}

bool parse_hex(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 16) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, 16);
  return ec == std::errc() && end == s.data() + s.size();
}

// The lines of a form with exactly `count` lines, each ended by '\n'; empty when not so.
std::vector<std::string_view> lines_of(std::string_view body, size_t count) {
  std::vector<std::string_view> out;
  if (body.size() > kUnchangedGossipBytesMax) return {};
  while (!body.empty()) {
    const auto end = body.find('\n');
    if (end == std::string_view::npos) return {};
    out.push_back(body.substr(0, end));
    body.remove_prefix(end + 1);
  }
  if (out.size() != count) return {};
  return out;
}

}  // namespace

uint64_t gossip_digest(const ClusterInfo& info) {
  Fnv h;
  h.bytes(info.cluster_name);
  h.bytes(info.server_ip);
  h.number(info.server_port);
  h.number(static_cast<int64_t>(info.members.size()));
  for (const MemberInfo& m : info.members) {
    h.bytes(m.instance_id);
    h.bytes(m.state);
    h.number(m.is_alive);
    h.bytes(m.internal_tcp_ip);
    h.number(m.internal_tcp_port);
    h.number(m.internal_secure_tcp_port);
    h.bytes(m.external_tcp_ip);
    h.number(m.external_tcp_port);
    h.number(m.external_secure_tcp_port);
    h.bytes(m.internal_http_ip);
    h.number(m.internal_http_port);
    h.bytes(m.external_http_ip);
    h.number(m.external_http_port);
    h.number(m.last_commit_position);
    h.number(m.writer_checkpoint);
    h.number(m.chaser_checkpoint);
    h.number(m.epoch_position);
    h.number(m.epoch_number);
    h.bytes(m.epoch_id);
    h.number(m.node_priority);
    h.number(m.is_read_only_replica);
    h.number(m.external_http_port_v5);
  }
  return h.value();
}

bool is_unchanged_gossip(std::string_view body) {
  return body.starts_with(kPushLine) || body.starts_with(kAnswerLine);
}

std::optional<std::string> to_text(const UnchangedPush& p) {
  for (const std::string* field : {&p.cluster_name, &p.sender, &p.time_stamp}) {
    if (field->find('\n') != std::string::npos) return std::nullopt;
  }
  std::string out = std::string(kPushLine) + "\n" + p.cluster_name + "\n" + p.sender + "\n" +
                    hex(p.view_digest) + "\n" + hex(p.known_digest) + "\n" + p.time_stamp + "\n";
  if (out.size() > kUnchangedGossipBytesMax) return std::nullopt;
  return out;
}

std::string to_text(const UnchangedAnswer& a) {
  return std::string(kAnswerLine) + "\n" + hex(a.view_digest) + "\n" + a.time_stamp + "\n";
}

std::optional<UnchangedPush> unchanged_push_from_text(std::string_view body, std::string* error) {
  const auto lines = lines_of(body, kPushFields);
  UnchangedPush p;
  if (lines.empty() || lines[0] != kPushLine || lines[2].empty() ||
      !parse_hex(lines[3], &p.view_digest) || !parse_hex(lines[4], &p.known_digest)) {
    if (error) *error = "not an unchanged push (" + std::string(kPushLine) + ", five lines)";
    return std::nullopt;
  }
  p.cluster_name = lines[1];
  p.sender = lines[2];
  p.time_stamp = lines[5];
  return p;
}

std::optional<UnchangedAnswer> unchanged_answer_from_text(std::string_view body,
                                                          std::string* error) {
  const auto lines = lines_of(body, kAnswerFields);
  UnchangedAnswer a;
  if (lines.empty() || lines[0] != kAnswerLine || !parse_hex(lines[1], &a.view_digest)) {
    if (error) *error = "not an unchanged answer";
    return std::nullopt;
  }
  a.time_stamp = lines[2];
  return a;
}

std::optional<UnchangedPush> DigestBook::unchanged_push(const std::string& target,
                                                        const std::string& cluster_name,
                                                        const std::string& sender,
                                                        uint64_t view_digest,
                                                        const std::string& time_stamp) const {
  const auto it = sent_.find(target);
  if (it == sent_.end() || it->second.sent != view_digest || it->second.answered == 0) {
    return std::nullopt;
  }
  return UnchangedPush{cluster_name, sender, view_digest, it->second.answered, time_stamp};
}

void DigestBook::exchanged(const std::string& target, uint64_t sent, uint64_t answered) {
  if (sent_.size() >= kEntriesMax && !sent_.count(target)) sent_.clear();
  sent_[target] = Sent{sent, answered};
}

bool DigestBook::answered(const std::string& target, uint64_t digest) const {
  const auto it = sent_.find(target);
  return it != sent_.end() && it->second.answered == digest;
}

void DigestBook::forget(const std::string& target) { sent_.erase(target); }

void DigestBook::took(const std::string& sender, uint64_t digest) {
  if (taken_.size() >= kEntriesMax && !taken_.count(sender)) taken_.clear();
  taken_[sender] = digest;
}

bool DigestBook::holds(const std::string& sender, uint64_t digest) const {
  const auto it = taken_.find(sender);
  return it != taken_.end() && it->second == digest;
}

}  // namespace chorus
