// ProjectionStatus: what the projections API shows of one projection (EventStore's projection
// statistics), and the answer of a listing. Plain data; any thread.
#pragma once

#include "worker/engine/types.hpp"

#include <cstdint>
#include <optional>
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
  int64_t version = 0;  // bumped by each change of the definition (query, config)
  int64_t epoch = -1;   // the version its state was last reset at
  int64_t partitions_cached = 1;
  int64_t reads_in_progress = 0;
  int64_t core_processing_time_ms = 0;  // spent in its handlers since this node leads
  int64_t buffered_events = 0;          // read but not yet processed
  std::string checkpoint_status;        // "" or "Requested" while a checkpoint is written
};

struct ProjectionListResult {
  NotHandledReason not_handled = NotHandledReason::None;
  std::vector<ProjectionStatus> projections;
};

// EventStore's management routes beyond create, state, query and commands.
struct ProjectionManagement {
  enum class Kind { Delete, UpdateQuery, GetConfig, PutConfig, GetQueryConfig };
  Kind kind = Kind::GetConfig;
  std::string name;
  std::string body;                       // UpdateQuery: the query; PutConfig: the config JSON
  std::optional<bool> emit;               // UpdateQuery: ?emit= when given
  bool delete_state_stream = false;       // Delete: $projections-<name>-result and partitions'
  bool delete_checkpoint_stream = false;  // Delete: $projections-<name>-checkpoint
  bool delete_emitted_streams = false;    // Delete: the streams it emitted to
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
