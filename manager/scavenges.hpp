// Scavenges through the management API (docs/management-api.md "Scavenge"). A node's scavenge is
// the node's own POST /admin/scavenge, called with the caller's credentials (the node checks them
// again). A cluster scavenge scavenges this manager's nodes of one cluster one at a time, in the
// order given (followers first, the leader last), on a thread of its own that waits for each
// node to finish before starting the next; it keeps the caller's Authorization header in memory
// until it ends, to start and follow each node's scavenge as that caller.
// Threading: HTTP request threads call every method; each cluster scavenge has its own thread.
#pragma once

#include "manager/config.hpp"
#include "manager/http_client.hpp"
#include "manager/supervisor.hpp"

#include <Poco/JSON/Object.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

namespace chorus::manager {

// A cluster scavenge asks its current node for progress this often.
inline constexpr int kScavengePollMs = 500;
// A node that answers no progress request for this long fails its step; the next node starts.
inline constexpr int64_t kScavengeNodeSilenceMs = 60000;
// Calls to a node's scavenge endpoints answer at once; a node slower than this is in trouble.
inline constexpr int kScavengeCallTimeoutMs = 5000;

struct ScavengeReply {
  int status = 200;
  std::string json;  // the body: a document, or {"error":"..."}
};

class ScavengeJobs {
 public:
  ScavengeJobs(const ManagerConfig& config, const Supervisor& supervisor);
  ~ScavengeJobs();
  ScavengeJobs(const ScavengeJobs&) = delete;
  ScavengeJobs& operator=(const ScavengeJobs&) = delete;

  // POST /api/nodes/{name}/scavenge: starts a scavenge on the running `node`; startFromChunk
  // and threads ("" when not given) are passed on, and the node checks them.
  ScavengeReply start_node(const NodeView& node, const std::string& auth_header,
                           const std::string& start_from_chunk, const std::string& threads);
  // GET /api/nodes/{name}/scavenge: the node's scavenge started last through this manager (else
  // the one running on it), as the node reports it.
  ScavengeReply node_progress(const NodeView& node, const std::string& auth_header);
  // POST /api/cluster/scavenge?cluster=: `order` are the cluster's nodes on this machine, in the
  // order to scavenge them. 409 while one of this cluster runs.
  ScavengeReply start_cluster(const std::string& cluster, const std::vector<NodeSpec>& order,
                              const std::string& auth_header);
  // GET /api/cluster/scavenge?cluster=: the cluster scavenge started last, with each node's step.
  ScavengeReply cluster_progress(const std::string& cluster);
  // Ends every cluster scavenge's thread (the nodes' scavenges go on); the manager's shutdown.
  void stop();

 private:
  struct Step {
    std::string node;
    std::string state = "Waiting";  // Waiting, Running, then the node's result, or Skipped
    std::string scavenge_id;
    std::string error;
    Poco::JSON::Object::Ptr last;  // the node's last answer about its scavenge
  };
  struct Job {
    std::string cluster;
    std::string state = "Running";  // Running, Success, Failed, Stopped
    int64_t started_unix_ms = 0;
    int64_t finished_unix_ms = 0;
    std::vector<NodeSpec> order;
    std::vector<Step> steps;  // GUARDED_BY(ScavengeJobs::mutex_)
    std::string auth_header;  // cleared when the job ends
    std::thread thread;
  };

  std::optional<HttpAnswer> call(const NodeSpec& spec, const std::string& method,
                                 const std::string& target, const std::string& auth_header) const;
  std::variant<std::string, ScavengeReply> start_on(const NodeSpec& spec,
                                                    const std::string& auth_header,
                                                    const std::string& start_from_chunk,
                                                    const std::string& threads);
  void run(const std::shared_ptr<Job>& job);
  void run_step(Job& job, size_t index);
  bool wait_poll();  // false when stopping
  Poco::JSON::Object::Ptr job_object(const Job& job) const;

  const ManagerConfig& config_;
  const Supervisor& supervisor_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::map<std::string, std::string> node_scavenge_;      // node -> scavenge id started last
  std::map<std::string, std::shared_ptr<Job>> clusters_;  // cluster -> its last job
};

}  // namespace chorus::manager
