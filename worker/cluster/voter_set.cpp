// Voter set rules and the pin file (see voter_set.hpp).
#include "worker/cluster/voter_set.hpp"

#include "common/guid.hpp"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace chorus::cluster {
namespace {

constexpr const char* kPinFileName = "voters";

std::string seat_advice() {
  return " (a node rebuilt with an empty data folder gets a new instance id: an admin moves the "
         "seat to it with POST /admin/members/replace; docs/operations.md)";
}

}  // namespace

VoterSet::VoterSet(Voter self, int cluster_size, std::vector<std::string> listed,
                   std::vector<Voter> pins)
    : self_(std::move(self)),
      cluster_size_(cluster_size),
      listed_(listed.begin(), listed.end()),
      pins_(std::move(pins)) {}

Verdict VoterSet::offer(const std::string& endpoint, const std::string& instance_id) {
  const std::string who = "node " + instance_id + " at " + endpoint;
  if (endpoint == self_.endpoint || instance_id == self_.instance_id) {
    return {Admission::kSelf, who + " claims this node's endpoint or instance id"};
  }
  for (const Voter& v : pins_) {
    if (v.endpoint == endpoint && v.instance_id == instance_id) return {Admission::kVoter, ""};
    if (v.endpoint == endpoint) {
      return {Admission::kIdMismatch,
              who + " is not a voter: that endpoint's seat is pinned to instance " + v.instance_id +
                  seat_advice()};
    }
    if (v.instance_id == instance_id) {
      return {Admission::kIdElsewhere,
              who + " is not a voter: that instance id holds the seat at " + v.endpoint};
    }
  }
  if (!listed_.empty() && listed_.count(endpoint) == 0) {
    return {Admission::kNotListed, who + " is not a voter: --cluster-member does not list it"};
  }
  if (static_cast<int>(pins_.size()) + 1 >= cluster_size_) {
    return {Admission::kFull, who + " is not a voter: all " + std::to_string(cluster_size_) +
                                  " seats (--cluster-size) are taken" + seat_advice()};
  }
  pins_.push_back(Voter{endpoint, instance_id});
  return {Admission::kPinned, ""};
}

std::optional<Replacement> VoterSet::plan_replacement(const std::string& seat, Voter successor,
                                                      std::string* error) const {
  if (seat == self_.endpoint || seat == self_.instance_id) {
    *error = "the seat of " + seat + " is this node's own: send the replacement to another member";
    return std::nullopt;
  }
  const auto pinned = std::find_if(pins_.begin(), pins_.end(), [&](const Voter& v) {
    return v.instance_id == seat || v.endpoint == seat;
  });
  if (pinned == pins_.end()) {
    *error = "no seat is pinned to " + seat + " (the seats: GET /gossip, or <Db>/voters)";
    return std::nullopt;
  }
  if (!parse_guid(successor.instance_id)) {
    *error = "the new member's instance id must be a GUID";
    return std::nullopt;
  }
  if (successor.endpoint.empty()) successor.endpoint = pinned->endpoint;
  const auto colon = successor.endpoint.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == successor.endpoint.size()) {
    *error = "the new member's endpoint must be its internal TCP <ip:port>";
    return std::nullopt;
  }
  if (successor.instance_id == self_.instance_id || successor.endpoint == self_.endpoint) {
    *error = "the new member names this node";
    return std::nullopt;
  }
  for (const Voter& v : pins_) {
    if (&v == &*pinned) continue;
    if (v.instance_id == successor.instance_id || v.endpoint == successor.endpoint) {
      *error = "the new member's instance id or endpoint already holds the seat at " + v.endpoint;
      return std::nullopt;
    }
  }
  if (pinned->instance_id == successor.instance_id) {
    *error = "the seat at " + pinned->endpoint + " is already pinned to " + successor.instance_id;
    return std::nullopt;
  }
  if (!listed_.empty() && listed_.count(successor.endpoint) == 0) {
    *error = "--cluster-member does not list " + successor.endpoint +
             " (a new member at another address needs --cluster-member changed on every member)";
    return std::nullopt;
  }
  return Replacement{*pinned, std::move(successor)};
}

bool VoterSet::apply_replacement(const Replacement& replacement) {
  std::string ignored;
  const std::optional<Replacement> planned =
      plan_replacement(replacement.seat.instance_id, replacement.successor, &ignored);
  if (!planned || planned->seat != replacement.seat) return false;
  for (Voter& v : pins_) {
    if (v == replacement.seat) v = planned->successor;
  }
  return true;
}

std::string replacement_to_json(const Replacement& replacement) {
  const auto voter = [](const Voter& v) {
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object;
    o->set("endpoint", v.endpoint);
    o->set("instanceId", v.instance_id);
    return o;
  };
  Poco::JSON::Object o;
  o.set("seat", voter(replacement.seat));
  o.set("successor", voter(replacement.successor));
  std::ostringstream out;
  o.stringify(out);
  return out.str();
}

std::optional<Replacement> replacement_from_json(const std::string& text, std::string* error) {
  try {
    const auto root = Poco::JSON::Parser().parse(text).extract<Poco::JSON::Object::Ptr>();
    const auto voter = [&](const char* name) {
      const Poco::JSON::Object::Ptr o = root->getObject(name);
      if (o.isNull()) throw Poco::Exception(std::string("no ") + name);
      return Voter{o->getValue<std::string>("endpoint"), o->getValue<std::string>("instanceId")};
    };
    return Replacement{voter("seat"), voter("successor")};
  } catch (const Poco::Exception& e) {
    *error = "not a member replacement: " + e.displayText();
  } catch (const std::exception& e) {
    *error = std::string("not a member replacement: ") + e.what();
  }
  return std::nullopt;
}

std::string VoterSet::check(const Voter& self, int cluster_size,
                            const std::vector<std::string>& listed,
                            const std::vector<Voter>& pins) {
  if (static_cast<int>(pins.size()) + 1 > cluster_size) {
    return "the voter file pins " + std::to_string(pins.size()) + " other nodes, but the cluster " +
           "size is " + std::to_string(cluster_size) +
           ": free the seats of the nodes that left (docs/cluster.md)";
  }
  std::set<std::string> endpoints{self.endpoint}, ids{self.instance_id};
  for (const Voter& v : pins) {
    if (!endpoints.insert(v.endpoint).second || !ids.insert(v.instance_id).second) {
      return "the voter file pins " + v.endpoint + " " + v.instance_id +
             " twice, or names this node";
    }
  }
  if (!listed.empty()) {
    if (static_cast<int>(listed.size()) != cluster_size) {
      return "--cluster-member lists " + std::to_string(listed.size()) +
             " endpoints, but --cluster-size is " + std::to_string(cluster_size);
    }
    if (std::find(listed.begin(), listed.end(), self.endpoint) == listed.end()) {
      return "--cluster-member does not list this node's internal TCP endpoint " + self.endpoint;
    }
    for (const Voter& v : pins) {
      if (std::find(listed.begin(), listed.end(), v.endpoint) == listed.end()) {
        return "the voter file pins " + v.endpoint + ", which --cluster-member does not list";
      }
    }
  }
  return "";
}

std::string VoterSet::to_text(const std::vector<Voter>& pins) {
  std::string out =
      "# The other voting members of this node's cluster: internal TCP endpoint, instance id.\n"
      "# Written by chorus-worker; see docs/cluster.md before editing (node stopped).\n";
  for (const Voter& v : pins) out += v.endpoint + " " + v.instance_id + "\n";
  return out;
}

std::optional<std::vector<Voter>> VoterSet::parse(const std::string& text, std::string* error) {
  std::vector<Voter> out;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream words(line);
    Voter v;
    std::string extra;
    const bool shaped =
        static_cast<bool>(words >> v.endpoint >> v.instance_id) && !(words >> extra);
    const auto colon = v.endpoint.rfind(':');
    if (!shaped || colon == std::string::npos || colon == 0 || !parse_guid(v.instance_id)) {
      *error = "line " + std::to_string(number) + ": expected '<ip:port> <instance id>'";
      return std::nullopt;
    }
    if (out.size() >= kVoterPinsMax) {
      *error = "more than " + std::to_string(kVoterPinsMax) + " voters";
      return std::nullopt;
    }
    out.push_back(std::move(v));
  }
  return out;
}

VoterBook::VoterBook(VoterSet set, std::string folder, Report report)
    : set_(std::move(set)), folder_(std::move(folder)), report_(std::move(report)) {}

std::vector<Voter> VoterBook::voters() const {
  std::lock_guard lock(mutex_);
  return set_.others();
}

std::optional<std::vector<Voter>> VoterBook::offer(
    const std::vector<std::pair<std::string, std::string>>& nodes) {
  std::lock_guard lock(mutex_);
  bool changed = false;
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [endpoint, instance_id] : nodes) {
    const VoterSet before = set_;
    const Verdict verdict = set_.offer(endpoint, instance_id);
    if (verdict.admission == Admission::kPinned) {
      std::string error;
      if (!folder_.empty() && !save_voter_pins(folder_, set_.others(), &error)) {
        set_ = before;  // a pin that is not durable must not count
        report_("cannot pin node " + instance_id + " at " + endpoint + ": " + error, true);
        continue;
      }
      changed = true;
      report_("voter pinned: node " + instance_id + " at " + endpoint, false);
      continue;
    }
    if (verdict.voter()) continue;
    const std::string key = endpoint + " " + instance_id;
    auto it = reported_.find(key);
    if (it != reported_.end() &&
        now - it->second < std::chrono::milliseconds(kVoterReportIntervalMs)) {
      continue;
    }
    if (reported_.size() >= kVoterPinsMax * 2) reported_.clear();  // bounded
    reported_[key] = now;
    report_(verdict.reason, true);
  }
  if (!changed) return std::nullopt;
  return set_.others();
}

std::optional<Replacement> VoterBook::plan_replacement(const std::string& seat, Voter successor,
                                                       std::string* error) const {
  std::lock_guard lock(mutex_);
  return set_.plan_replacement(seat, std::move(successor), error);
}

std::optional<std::vector<Voter>> VoterBook::apply_replacement(const Replacement& replacement) {
  std::lock_guard lock(mutex_);
  const VoterSet before = set_;
  if (!set_.apply_replacement(replacement)) return std::nullopt;
  std::string error;
  if (!folder_.empty() && !save_voter_pins(folder_, set_.others(), &error)) {
    set_ = before;  // tried again at the next start, which reads $voters again
    report_("cannot move the seat of " + replacement.seat.instance_id + ": " + error, true);
    return std::nullopt;
  }
  report_("voter replaced: the seat of node " + replacement.seat.instance_id + " at " +
              replacement.seat.endpoint + " now belongs to node " +
              replacement.successor.instance_id + " at " + replacement.successor.endpoint,
          false);
  return set_.others();
}

std::optional<std::vector<Voter>> load_voter_pins(const std::string& folder, std::string* error) {
  const auto path = std::filesystem::path(folder) / kPinFileName;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::vector<Voter>{};
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) {
    *error = "cannot read '" + path.string() + "'";
    return std::nullopt;
  }
  auto pins = VoterSet::parse(text.str(), error);
  if (!pins) *error = path.string() + ": " + *error;
  return pins;
}

bool save_voter_pins(const std::string& folder, const std::vector<Voter>& pins,
                     std::string* error) {
  const auto path = std::filesystem::path(folder) / kPinFileName;
  const auto aside = std::filesystem::path(folder) / (std::string(kPinFileName) + ".new");
  const std::string text = VoterSet::to_text(pins);
  // A pin must survive a crash once a vote or ack may depend on it: write, fsync, rename.
  const int fd = ::open(aside.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool ok = fd >= 0;
  size_t written = 0;
  while (ok && written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) written += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  const int saved_errno = errno;
  if (fd >= 0) ::close(fd);
  if (ok && std::rename(aside.c_str(), path.c_str()) != 0) ok = false;
  if (!ok) {
    *error =
        "cannot write '" + path.string() + "': " + std::strerror(saved_errno ? saved_errno : errno);
  }
  return ok;
}

}  // namespace chorus::cluster
