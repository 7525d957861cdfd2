// ProjectionStatus: what the projections API shows of one projection (EventStore's projection
// statistics), and the answer of a listing. Plain data; any thread.
#pragma once

#include "worker/engine/types.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace chorus::projections {

struct ProjectionStatus {
  std::string name;
  std::string status;        // Running, Preparing (loading its checkpoint), Faulted
  std::string state_reason;  // why it is Faulted
  std::string mode = "Continuous";
  Position position;             // every record before it is processed and its output acknowledged
  Position checkpoint;           // the last checkpoint written (or loaded at start)
  int64_t events_processed = 0;  // records read since this node started leading
  int64_t writes_in_progress = 0;
  double progress = 0;  // percent of the committed log processed
};

struct ProjectionListResult {
  NotHandledReason not_handled = NotHandledReason::None;
  std::vector<ProjectionStatus> projections;
};

// The answer of a projection command or query (create, delete, state, result, query).
enum class ProjectionOutcome { Ok, NotFound, Exists, AccessDenied, Invalid };

struct ProjectionReply {
  NotHandledReason not_handled = NotHandledReason::None;
  ProjectionOutcome outcome = ProjectionOutcome::Ok;
  std::string message;  // why, when not Ok
  std::string body;     // state, result (JSON, "" when none) or the query text
};

}  // namespace chorus::projections
