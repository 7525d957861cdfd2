// Projection: one query in EventStore's projection language, run on its own JsHeap. Pure: the
// host feeds events (and stream deletions) in log order and reads back each partition's state
// and result and the events a handler emitted; reading, writing and checkpoints are the host's.
// Every entry into JavaScript runs under the heap's time and memory limits; the first failure
// (a throw, a runaway loop, the memory limit) makes the projection Faulted with its message,
// and a faulted projection processes nothing more.
// Threading: one thread at a time (a JsHeap).
#pragma once

#include "worker/projections/js_heap.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace chorus::projections {

// The largest query source accepted (EventStore's queries are a few kilobytes).
inline constexpr size_t kQueryBytesMax = 1024u * 1024u;

// What the query selected, as EventStore's `sources` definition.
struct SourceDefinition {
  bool all_streams = false;
  std::vector<std::string> streams;
  std::vector<std::string> categories;
  bool all_events = true;
  std::vector<std::string> events;    // handled event types when !all_events
  bool by_streams = false;            // foreachStream()
  bool by_custom_partitions = false;  // partitionBy(f)
  bool defines_fold = false;
  bool produces_results = false;  // outputState(), transformBy, filterBy
  bool defines_state_transform = false;
  bool handles_deleted = false;
  bool bi_state = false;  // $initShared
  std::optional<std::string> result_stream_name;
  bool include_links = false;
  bool reorder_events = false;
  int64_t processing_lag_ms = 0;
};

// One event as the host feeds it. For a link the host resolved, `stream`/`number` are the
// target's, `link_metadata` the link's, and `read_stream` the stream the host read.
struct ProjectionEvent {
  std::string read_stream;  // empty: the same as `stream`
  std::string stream;
  int64_t number = 0;
  std::string event_type;
  std::string event_id;
  bool is_json = false;
  std::string data;
  std::string metadata;
  std::string link_metadata;
  bool resolved_link = false;
};

struct EmittedEvent {
  std::string stream;
  std::string event_type;
  bool is_json = false;
  std::string data;
  std::string metadata;
};

enum class Outcome { Processed, Skipped, Faulted };

struct ProcessResult {
  Outcome outcome = Outcome::Skipped;
  std::string partition;
  std::vector<EmittedEvent> emitted;
};

class Projection {
 public:
  struct Compiled;
  // Compiles `query`; on failure `error` says why and `projection` is null.
  static Compiled compile(const std::string& name, const std::string& query, JsLimits limits);

  const std::string& name() const { return name_; }
  const SourceDefinition& sources() const { return sources_; }
  // The stream results go to: resultStreamName, or $projections-<name>-result.
  std::string result_stream() const;

  // Whether `event` belongs to the selected source, types and links.
  bool wants(const ProjectionEvent& event) const;
  ProcessResult process(const ProjectionEvent& event);
  // A stream of the source was deleted: runs $deleted with its partition (foreachStream only).
  ProcessResult stream_deleted(const std::string& stream, bool soft);

  // A partition's state and result as JSON (nullopt: never seen / filtered out). The root
  // partition is "".
  std::optional<std::string> state(const std::string& partition);
  std::optional<std::string> shared_state();
  std::optional<std::string> result(const std::string& partition);
  // Restores a partition's state from a checkpoint (JSON); false and Faulted when it fails.
  bool load_state(const std::string& partition, const std::string& json);
  bool load_shared_state(const std::string& json);
  // Every partition's state (and the shared state) as one JSON document, for a checkpoint; and
  // back. nullopt / false (and Faulted) when it fails.
  std::optional<std::string> snapshot();
  bool restore(const std::string& json);
  // What the query logged with log(), the most recent last (bounded).
  std::vector<std::string> log_lines();

  bool faulted() const { return !fault_.empty(); }
  const std::string& fault() const { return fault_; }

 private:
  Projection(std::string name, JsLimits limits);
  bool selects(const std::string& read_stream, const std::string& stream) const;
  std::optional<std::string> enter(const std::string& function, const std::vector<JsArg>& args);
  std::optional<std::string> partition_of(const ProjectionEvent& event, const std::string& cat);
  bool parse_emitted(const std::string& json, std::vector<EmittedEvent>& out);
  void fail(std::string message);

  std::string name_;
  std::unique_ptr<JsHeap> heap_;
  SourceDefinition sources_;
  std::string fault_;
};

// A partition's state ("" the root) in a document Projection::snapshot() made, as JSON; nullopt
// when it is not there or the document is not readable.
std::optional<std::string> partition_state_in(const std::string& snapshot,
                                              const std::string& partition);

struct Projection::Compiled {
  std::unique_ptr<Projection> projection;
  std::string error;
};

}  // namespace chorus::projections
