// Unchanged gossip pushes (issue 16: an idle cluster's gossip should cost microseconds). A member
// that pushed its whole view to a peer and got the peer's whole view back may later push only
// "unchanged": the digest of its view (everything but the members' time stamps) is the one the
// peer took from it last time, and it names the digest of the peer's view that it holds. The
// peer then takes only the sender's word that it is alive (with its entry's time stamp), and
// answers "unchanged" in turn while its own view still has the digest the sender holds, else its
// whole view. A peer that does not hold the sender's digest (it restarted, or the sender's view
// changed back) answers kGossipWholeViewStatus and the sender pushes its whole view at once.
// Both forms are POST /gossip bodies, signed like any push. Plain data and pure functions, plus
// DigestBook (one owner, not thread-safe).
#pragma once

#include "common/gossip.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace chorus {

// The answer to an unchanged push whose digest the receiver does not hold: push the whole view.
inline constexpr int kGossipWholeViewStatus = 412;
// An unchanged push or answer is a few short lines; a longer body is not one.
inline constexpr size_t kUnchangedGossipBytesMax = 1024;

// FNV-1a (64 bits) over every field of the document except the members' time stamps, which
// change with every round even when nothing else does. Not a security measure: the signature of
// the push proves who sent it; the digest only tells two members that a view is the same.
uint64_t gossip_digest(const ClusterInfo& info);

struct UnchangedPush {
  std::string cluster_name;   // the sender's cluster (a manager relays several)
  std::string sender;         // the sender's member key (internal HTTP "ip:port")
  uint64_t view_digest = 0;   // the sender's view
  uint64_t known_digest = 0;  // the receiver's view as the sender holds it
  std::string time_stamp;     // the sender's own entry's time stamp now
};

struct UnchangedAnswer {
  uint64_t view_digest = 0;  // the answering member's view (the one the sender holds)
  std::string time_stamp;    // the answering member's own entry's time stamp now
};

// True when a POST /gossip body (or its answer) is the unchanged form, not a JSON document.
bool is_unchanged_gossip(std::string_view body);
// The text forms: a first line naming the form, then one field a line. nullopt from to_text
// when a field cannot be written (a line break in the cluster name): push the whole view then.
std::optional<std::string> to_text(const UnchangedPush& push);
std::string to_text(const UnchangedAnswer& answer);
// nullopt with `error` for a body that is not exactly such a form.
std::optional<UnchangedPush> unchanged_push_from_text(std::string_view body, std::string* error);
std::optional<UnchangedAnswer> unchanged_answer_from_text(std::string_view body,
                                                          std::string* error);

// What a member answers an unchanged push.
struct UnchangedReply {
  enum class Kind {
    kWholeView,   // 200 with our whole view: it changed since the sender's copy
    kUnchanged,   // 200 with `unchanged`: the sender's copy of our view is current
    kWantsWhole,  // kGossipWholeViewStatus: we do not hold the sender's view
    kRefused,     // 409: another cluster's push (`error`)
  };
  Kind kind = Kind::kWantsWhole;
  ClusterInfo view;
  UnchangedAnswer unchanged;
  std::string error;
};

// What one member knows of each exchange, for deciding whether a push may be unchanged. Keyed by
// the other member's key (and, on the manager, the cluster). Bounded: past kEntriesMax entries it
// forgets all, which costs one whole-view exchange each.
class DigestBook {
 public:
  static constexpr size_t kEntriesMax = 1024;

  // Sender side. The unchanged push to `target` if it took `view_digest` from us and we hold a
  // view of it; nullopt: push the whole view.
  std::optional<UnchangedPush> unchanged_push(const std::string& target,
                                              const std::string& cluster_name,
                                              const std::string& sender, uint64_t view_digest,
                                              const std::string& time_stamp) const;
  // `target` took our whole view (`sent`) and answered its whole view (`answered`).
  void exchanged(const std::string& target, uint64_t sent, uint64_t answered);
  // Whether the view of `target` that we hold has this digest.
  bool answered(const std::string& target, uint64_t digest) const;
  // The exchange with `target` failed or it asked for the whole view: push it next time.
  void forget(const std::string& target);

  // Receiver side. We merged `sender`'s whole view with this digest.
  void took(const std::string& sender, uint64_t digest);
  // Whether the last whole view we merged from `sender` had this digest.
  bool holds(const std::string& sender, uint64_t digest) const;

 private:
  struct Sent {
    uint64_t sent = 0;
    uint64_t answered = 0;
  };
  std::map<std::string, Sent> sent_;
  std::map<std::string, uint64_t> taken_;
};

}  // namespace chorus
