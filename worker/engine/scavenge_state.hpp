// What a scavenge reports (its state for the HTTP API) and how it writes its $scavenges events.
// Values only; any thread.
#pragma once

#include "worker/engine/types.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace chorus {

struct ScavengeState {
  std::string id;
  std::string node_endpoint;
  std::string result = "InProgress";  // InProgress, Success, Stopped, Failed
  std::string error;
  int64_t started_ms = 0;  // wall clock
  int64_t time_taken_ms = 0;
  int64_t events_examined = 0;
  int64_t events_removed = 0;
  int64_t space_saved_bytes = 0;
  int64_t start_position = 0;
  int64_t scan_position = 0;  // where the scan is
  int64_t end_position = 0;   // the committed end it scans to
  int progress_percent() const;
};

// Writes a scavenge's events to a system stream through the leader. Called on the scavenger's
// thread; `done(ok)` may run on any thread, once.
using ScavengeLog = std::function<void(std::string stream, std::vector<NewEvent> events,
                                       std::function<void(bool ok)> done)>;

struct ScavengeStart {
  bool started = false;
  std::string id;  // the new scavenge, or the one already running
};

}  // namespace chorus
