// VoterSet: which nodes vote and count toward a quorum (docs/cluster.md, "The voter set"). A
// cluster has ClusterSize seats; this node holds one. Every other seat is an internal TCP
// endpoint pinned to the instance id first seen there (from gossip, where every member states
// its own id); once pinned, another id at that endpoint, or that id at another endpoint, is
// refused until an operator frees the seat. With --cluster-member, only the listed endpoints
// can take a seat. Pure rules plus the text of the pin file; not thread-safe (one owner locks).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace chorus::cluster {

// Pins stored in <Db>/voters at most: a cluster has at most 99 nodes (--cluster-size).
inline constexpr size_t kVoterPinsMax = 128;

struct Voter {
  std::string endpoint;     // internal TCP "ip:port"
  std::string instance_id;  // GUID text
  friend bool operator==(const Voter&, const Voter&) = default;
};

enum class Admission {
  kVoter,        // already pinned there
  kPinned,       // a free seat was pinned to it now (persist the pins)
  kNotListed,    // --cluster-member is given and does not list the endpoint
  kFull,         // every seat is pinned to another node
  kIdMismatch,   // the endpoint is pinned to another instance id
  kIdElsewhere,  // the instance id is pinned to another endpoint
  kSelf,         // names this node's endpoint or id
};

// An operator's replacement of a member (POST /admin/members/replace, docs/operations.md): the
// seat pinned to `seat` goes to `successor`. It travels as an event of kVotersStream, so every
// member applies it once it is committed.
struct Replacement {
  Voter seat;       // as pinned now
  Voter successor;  // the new member: its instance id, and its endpoint (often the seat's)
  friend bool operator==(const Replacement&, const Replacement&) = default;
};
inline constexpr const char* kVotersStream = "$voters";
inline constexpr const char* kMemberReplacedEventType = "$member-replaced";
// The event's data: {"seat":{"endpoint","instanceId"},"successor":{"endpoint","instanceId"}}.
std::string replacement_to_json(const Replacement& replacement);
std::optional<Replacement> replacement_from_json(const std::string& text, std::string* error);

struct Verdict {
  Admission admission;
  std::string reason;  // for the log, when refused
  bool voter() const { return admission == Admission::kVoter || admission == Admission::kPinned; }
};

class VoterSet {
 public:
  // `listed`: the --cluster-member endpoints (empty: any endpoint may take a free seat).
  VoterSet(Voter self, int cluster_size, std::vector<std::string> listed, std::vector<Voter> pins);

  // Whether the node at `endpoint` with `instance_id` votes; pins it to a free seat if it may.
  Verdict offer(const std::string& endpoint, const std::string& instance_id);
  // The pinned voters other than this node.
  const std::vector<Voter>& others() const { return pins_; }
  const Voter& self() const { return self_; }
  int cluster_size() const { return cluster_size_; }

  // The replacement of the seat named by `seat` (a pinned instance id or endpoint) by the node
  // `successor` (an empty endpoint: the seat's own). nullopt + `error` when it cannot be: no such
  // seat, this node's own seat, a successor that already votes or is not listed.
  std::optional<Replacement> plan_replacement(const std::string& seat, Voter successor,
                                              std::string* error) const;
  // Applies a committed replacement when its seat is still pinned as it says and plan_replacement
  // would accept it; whether the pins changed. Applying one twice, or an outdated one, changes
  // nothing.
  bool apply_replacement(const Replacement& replacement);

  // Why these pins cannot be used with this configuration ("" when they can).
  static std::string check(const Voter& self, int cluster_size,
                           const std::vector<std::string>& listed, const std::vector<Voter>& pins);
  // The pin file: one "<endpoint> <instance id>" line per voter, '#' lines are comments.
  static std::string to_text(const std::vector<Voter>& pins);
  static std::optional<std::vector<Voter>> parse(const std::string& text, std::string* error);

 private:
  Voter self_;
  int cluster_size_;
  std::set<std::string> listed_;
  std::vector<Voter> pins_;
};

// The node's VoterSet behind a lock, with its pin file in `folder` (empty: pins live in memory,
// for --mem-db), telling `report` each pin and each refused node (a node at most once per
// kVoterReportIntervalMs, so a stray node cannot fill the log). Any thread.
inline constexpr int kVoterReportIntervalMs = 60 * 1000;
class VoterBook {
 public:
  using Report = std::function<void(const std::string& line, bool refused)>;
  VoterBook(VoterSet set, std::string folder, Report report);
  // Offers each (internal TCP endpoint, instance id) gossip knows; the voters when they changed.
  std::optional<std::vector<Voter>> offer(
      const std::vector<std::pair<std::string, std::string>>& nodes);
  std::vector<Voter> voters() const;
  std::optional<Replacement> plan_replacement(const std::string& seat, Voter successor,
                                              std::string* error) const;
  // Applies a committed replacement and saves the pins; the voters when they changed.
  std::optional<std::vector<Voter>> apply_replacement(const Replacement& replacement);

 private:
  mutable std::mutex mutex_;
  VoterSet set_;
  std::string folder_;
  Report report_;
  std::map<std::string, std::chrono::steady_clock::time_point> reported_;
};

// Reads <folder>/voters (no file: no pins); nullopt with `error` when it cannot be read.
std::optional<std::vector<Voter>> load_voter_pins(const std::string& folder, std::string* error);
// Replaces <folder>/voters atomically (written aside, synced, renamed); false with `error`.
bool save_voter_pins(const std::string& folder, const std::vector<Voter>& pins, std::string* error);

}  // namespace chorus::cluster
