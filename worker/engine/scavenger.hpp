// Scavenger: one node's background scavenge. It scans the committed log in position order,
// decides per record with the retention rules (retention.hpp) at the commit point the scavenge
// started from, has the storage writer delete what may go (small throttled jobs, so writes keep
// flowing), then vacuums the freed pages back to the file system. Progress and results go to
// `$scavenges` and `$scavenges-<id>` through a ScavengeLog (the leader's write path).
// Threading: public methods from any thread; the scavenge itself runs on the scavenger's thread.
#pragma once

#include "worker/engine/scavenge_state.hpp"
#include "worker/engine/storage.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace chorus {

// Bounds of scavenging (one place, with their reasons).
// EventStore's chunk size: startFromChunk N starts at position N * this, and progress events
// ($scavengeChunksCompleted) cover this much log each.
inline constexpr int64_t kScavengeChunkBytes = 256ll * 1024 * 1024;
// Records read per scan query: large enough to amortize the query, small enough to stop fast.
inline constexpr int kScavengeScanRows = 2048;
// Records deleted per writer job: a job holds the writer (and so client writes) for a few ms.
inline constexpr size_t kScavengeJobRecordsMax = 256;
// Pages freed per incremental-vacuum job (1 MiB of 4 KiB pages; moving pages is the costliest
// step), for the same reason.
inline constexpr int kScavengeVacuumPagesPerJob = 256;
// After each job the scavenger rests this many times the job's duration: the writer spends at
// most half of its time on the scavenge while clients write.
inline constexpr int kScavengeRestFactor = 1;
// `$maxAge` of `$scavenges` and of each `$scavenges-<id>`, in seconds: EventStore's
// ScavengeHistoryMaxAge default (30 days); a later scavenge removes older history.
inline constexpr int64_t kScavengeHistoryMaxAgeSeconds = int64_t{30} * 24 * 60 * 60;
// Finished scavenges whose state GET /admin/scavenge/{id} still answers.
inline constexpr size_t kScavengeHistoryMax = 16;
// `threads` is accepted like EventStore's; deletions go through the one writer thread anyway.
inline constexpr int kScavengeThreadsMax = 4;
// Streams whose retention plan is cached during a scan; beyond it the cache starts over.
inline constexpr size_t kScavengePlanCacheMax = 100000;

// What the scavenger needs from the node.
struct ScavengeHooks {
  std::function<int64_t()> committed_end;   // everything below it is committed and durable
  std::function<bool(MaintenanceJob)> run;  // hands a job to the storage writer
  std::string node_endpoint;                // "ip:port" in the events
};

class Scavenger {
 public:
  Scavenger(const Database& db, ScavengeHooks hooks);
  ~Scavenger();
  Scavenger(const Scavenger&) = delete;
  Scavenger& operator=(const Scavenger&) = delete;

  // Starts a scavenge unless one runs. start_from_chunk >= 0.
  ScavengeStart start(int64_t start_from_chunk, ScavengeLog log);
  std::optional<ScavengeState> current() const;
  std::optional<ScavengeState> find(const std::string& id) const;
  // Asks the running scavenge `id` to stop; false when it is not the running one.
  bool stop(const std::string& id);
  // Stops any running scavenge and joins its thread (node shutdown).
  void shutdown();

 private:
  class Run;
  void finish(const ScavengeState& state);

  const Database& db_;
  ScavengeHooks hooks_;
  mutable std::mutex mutex_;
  std::shared_ptr<Run> running_;
  std::deque<ScavengeState> history_;
  std::thread thread_;
};

}  // namespace chorus
