// Machines document: parallel calls to the peer managers' internal /api/nodes.
#include "manager/machines.hpp"

#include "manager/http_client.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <future>
#include <sstream>

namespace chorus::manager {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

// One machine's entry from a nodes document; an unreachable one with `error` if it is none.
Object::Ptr machine(const std::string& address, bool self, const std::string& body,
                    const std::string& error) {
  Object::Ptr m = new Object;
  m->set("address", address);
  m->set("self", self);
  const Object::Ptr doc = error.empty() ? parse_json_object(body) : nullptr;
  const bool valid = doc && doc->has("manager") && doc->isObject("manager") && doc->has("nodes") &&
                     doc->isArray("nodes");
  m->set("reachable", valid);
  if (!valid) {
    m->set("error", error.empty() ? "the answer is not a manager's nodes document" : error);
    return m;
  }
  m->set("manager", doc->getObject("manager"));
  m->set("nodes", doc->getArray("nodes"));
  return m;
}

Object::Ptr ask_peer(const HostPort& peer, const Poco::Net::Context::Ptr& tls) {
  const std::string address = peer.host + ":" + std::to_string(peer.port);
  const auto answer =
      http_request("GET", peer.host, peer.port, "/api/nodes", "", {}, kPeerCallTimeoutMs, tls);
  if (!answer) return machine(address, false, "", "no answer within the deadline");
  if (answer->status != 200) {
    return machine(address, false, "", "answered HTTP " + std::to_string(answer->status));
  }
  if (answer->body.size() > kPeerAnswerBytesMax) {
    return machine(address, false, "",
                   "answer larger than " + std::to_string(kPeerAnswerBytesMax) + " bytes");
  }
  return machine(address, false, answer->body, "");
}

}  // namespace

std::string MachinesCache::get(int64_t now_ms, const std::function<std::string()>& build) {
  std::lock_guard lock(mutex_);
  if (now_ms - built_ms_ >= kMachinesRefreshMs || document_.empty()) {
    document_ = build();
    built_ms_ = now_ms;
  }
  return document_;
}

std::string machines_json(const std::string& own_address, const std::string& own_nodes_json,
                          const std::vector<HostPort>& peers, const Poco::Net::Context::Ptr& tls) {
  std::vector<std::future<Object::Ptr>> asked;
  for (size_t i = 0; i < peers.size() && i < kPeerManagersMax; ++i) {
    asked.push_back(std::async(std::launch::async, ask_peer, peers[i], tls));
  }
  Array::Ptr list = new Array;
  list->add(machine(own_address, true, own_nodes_json, ""));
  for (auto& f : asked) list->add(f.get());
  Object::Ptr root = new Object;
  root->set("machines", list);
  std::ostringstream out;
  root->stringify(out);
  return out.str();
}

}  // namespace chorus::manager
