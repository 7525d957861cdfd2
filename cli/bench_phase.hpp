// One benchmark phase of `chorus bench`: C client connections (chorus::client::Client, each its
// own TCP connection) doing one kind of work (writes, stream reads or $all reads) against one
// node, run on one io_context with 1-2 threads, measured from the moment every connection is
// ready until the last one finishes. `run_phase` blocks until then; `progress` counters may be
// read from another thread meanwhile.
#pragma once

#include <chorus/settings.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace chorus::bench {

// Limits of the command line (see chorus_bench.cpp) and of one run.
inline constexpr int kConnectionsMax = 1024;
inline constexpr int kInflightMax = 256;
inline constexpr int kThreadsMax = 2;
inline constexpr int kBatchEventsMax = 4096;
inline constexpr int kPageEventsMax = 4096;  // the EventStore clients refuse larger reads
inline constexpr int64_t kEventBytesMax = 16LL * 1024 * 1024;
inline constexpr int64_t kStreamsMax = 1000000;
// Nothing completing for this long means the server is stuck: the phase is aborted.
inline constexpr int kStallTimeoutMs = 30000;
// No phase runs longer than this, whatever its options.
inline constexpr int64_t kPhaseSecondsMax = 3600;
// Latency samples kept per connection (4 bytes each); later ones are counted but not kept.
inline constexpr size_t kLatencySamplesPerConnectionMax = size_t{1} << 22;

enum class PhaseKind { Write, ReadStream, ReadAll };

struct PhaseConfig {
  PhaseKind kind = PhaseKind::Write;
  // The node's TCP endpoint, or discovery through `settings.gossip_seeds` when unset.
  std::optional<client::Endpoint> endpoint;
  client::Settings settings;  // credentials, seeds; limits are set by run_phase
  // 0: any timeout, NotReady or lost connection is an error at once (the server's figures);
  // more: the client library resends as for an application (failover measurements).
  int max_retries = 0;
  int max_reconnections = 0;
  int connections = 64;
  int inflight = 1;
  int threads = 1;
  // Writes.
  int64_t event_bytes = 256;
  int batch_events = 1;
  std::vector<std::string> streams;  // written round-robin
  int64_t events_total = 0;          // 0: run for `duration_s`
  double duration_s = 0;
  // Reads.
  std::string read_stream;
  int page_events = 4096;
  int64_t read_events_max = 0;  // per connection; 0: to the end
};

struct PhaseResult {
  double elapsed_s = 0;
  int64_t events = 0;
  int64_t requests = 0;
  int64_t reply_bytes = 0;
  std::vector<uint32_t> latencies_us;          // request -> reply, one per request (bounded)
  std::map<std::string, int64_t> non_success;  // result or reply name -> count
  std::vector<std::string> failures;           // connection-level errors
};

// Live counters of a running phase (relaxed atomics; for the progress line).
struct PhaseProgress {
  std::atomic<int64_t> events{0};
  std::atomic<int64_t> requests{0};
  std::atomic<int64_t> errors{0};
  std::atomic<bool> started{false};
};

PhaseResult run_phase(const PhaseConfig& config, PhaseProgress* progress);

}  // namespace chorus::bench
