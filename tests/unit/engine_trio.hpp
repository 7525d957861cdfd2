// Three real engines replicating in one process, for unit tests of what a cluster does: a
// Network delivers the replication messages between them (synchronously, on the sender's
// thread) and may drop any; a Trio opens the three engines in memory or in temporary folders
// (removed at the end) and names its leader.
#pragma once

#include "common/guid.hpp"
#include "tests/unit/eventually.hpp"
#include "worker/engine/engine.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace chorus::test {

// How long a Trio waits for a leader.
inline constexpr std::chrono::seconds kTrioDeadline{20};

// Delivers replication messages between engines of this process; `drop` may refuse any.
class Network {
 public:
  using Drop = std::function<bool(const replication::Message&)>;

  void attach(const std::string& id, Engine* engine) {
    std::lock_guard lock(mutex_);
    engines_[id] = engine;
  }
  void detach(const std::string& id) {
    std::lock_guard lock(mutex_);
    engines_.erase(id);
  }
  void set_drop(Drop drop) {
    std::lock_guard lock(mutex_);
    drop_ = std::move(drop);
  }
  void deliver(replication::Message message) {
    std::lock_guard lock(mutex_);  // held: a detached engine is never called after detach()
    if (drop_ && drop_(message)) return;
    const auto it = engines_.find(message.to);
    if (it != engines_.end()) it->second->receive(std::move(message));
  }

 private:
  std::mutex mutex_;
  std::map<std::string, Engine*> engines_;
  Drop drop_;
};

class Link final : public ReplicationTransport {
 public:
  explicit Link(Network& network) : network_(network) {}
  void send(replication::Message message) override { network_.deliver(std::move(message)); }

 private:
  Network& network_;
};

class Trio {
 public:
  // `configure` may change each engine's configuration before it opens (timeouts, in tests).
  explicit Trio(bool on_disk, std::function<void(EngineConfig&)> configure = nullptr)
      : configure_(std::move(configure)) {
    for (int i = 0; i < 3; ++i) {
      ids_.push_back("n" + std::to_string(i + 1));
      if (on_disk) {
        folders_.push_back(std::filesystem::temp_directory_path() /
                           ("chorus-trio-" + to_string(random_guid())));
      }
    }
    for (int i = 0; i < 3; ++i) links_.push_back(std::make_unique<Link>(network_));
    engines_.resize(3);
    for (int i = 0; i < 3; ++i) start(i);
  }
  ~Trio() {
    for (int i = 0; i < 3; ++i) stop(i);
    for (const auto& folder : folders_) std::filesystem::remove_all(folder);
  }

  void start(int i) {
    EngineConfig c;
    c.in_memory = folders_.empty();
    if (!folders_.empty()) c.db_folder = folders_[i].string();
    c.cluster.node_id = ids_[i];
    c.cluster.endpoint = "127.0.0." + std::to_string(i + 1) + ":1112";
    c.cluster.cluster_size = 3;
    c.cluster.seed = 1000 + static_cast<uint64_t>(i);
    if (configure_) configure_(c);
    engines_[i] = Engine::open(c, links_[i].get());
    network_.attach(ids_[i], engines_[i].get());
    std::vector<std::string> peers;
    for (int j = 0; j < 3; ++j) {
      if (j != i) peers.push_back(ids_[j]);
    }
    engines_[i]->set_peers(peers);
  }
  void stop(int i) {
    network_.detach(ids_[i]);
    engines_[i].reset();
  }

  int leader() {
    int found = -1;
    const bool led = test::eventually(
        [&] {
          for (int i = 0; i < 3; ++i) {
            if (engines_[i] && engines_[i]->is_leader()) found = i;
          }
          return found >= 0;
        },
        kTrioDeadline);
    EXPECT_TRUE(led) << "no leader";
    return found;
  }

  Engine& operator[](int i) { return *engines_[i]; }
  Network& network() { return network_; }
  const std::string& id(int i) const { return ids_[i]; }

 private:
  std::function<void(EngineConfig&)> configure_;
  Network network_;
  std::vector<std::string> ids_;
  std::vector<std::filesystem::path> folders_;
  std::vector<std::unique_ptr<Link>> links_;
  std::vector<std::unique_ptr<Engine>> engines_;
};

}  // namespace chorus::test
