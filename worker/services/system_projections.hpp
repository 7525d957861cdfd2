// SystemProjections: the leader service that runs the standard projections ($streams,
// $stream_by_category, $by_category, $by_event_type, $by_correlation_id). It reads $all in pages
// from the oldest of their checkpoints, writes each page's `$>` links through the write path
// (replicated like any write, one link per append, in log order) and reads on while up to
// kSystemPagesInFlightMax pages of links wait for their acknowledgements; a checkpoint
// ($projections-<name>-checkpoint) names the end of the acknowledged pages and follows at most
// kSystemCheckpointMs after links were written. Links carry ids derived from the source position
// (worker/projections/system_projections.hpp), so a page written again after a restart or a
// failover is answered as an idempotent retry: no link is lost or written twice.
// Each projection can be disabled, enabled and reset, and $by_category, $stream_by_category and
// $by_correlation_id take EventStore's query text as settings; the enabled flag and the settings
// are kept in its definition stream ($projections-<name>, $ProjectionUpdated), so the next leader
// honours them. A reset projection links $all again from its start; links that its target
// streams already hold (by the source position in their metadata) are not written again.
// Threading: everything runs on the engine's core thread (a LeaderService).
#pragma once

#include "worker/projections/status.hpp"
#include "worker/projections/system_projections.hpp"
#include "worker/services/leader_services.hpp"

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace chorus {

// Limits of the service (one place, with their reasons).
// Source records per $all page, and pages whose links may wait for acknowledgement at once:
// together they bound the links in flight (at most five per record, so 20,000).
inline constexpr int32_t kSystemPageRecords = 1'000;
inline constexpr size_t kSystemPagesInFlightMax = 4;
// Links written since the last checkpoint are checkpointed after at most this long; it bounds
// what a new leader writes again (as idempotent retries) after a failover.
inline constexpr int kSystemCheckpointMs = 1'000;
// A failed read or write is tried again after this long (the page is written again, by id).
inline constexpr int kSystemRetryMs = 500;
// Even without commit notices, a caught-up service looks at $all this often.
inline constexpr int kSystemPollMs = 1'000;
// Checkpoint events kept per projection (older ones are of no use).
inline constexpr int kSystemCheckpointsKept = 10;
// Definition events kept per projection (the last one counts).
inline constexpr int kSystemDefinitionsKept = 10;

class SystemProjections final : public LeaderService {
 public:
  using NowMs = std::function<int64_t()>;
  using Done = std::function<void(projections::ProjectionReply)>;
  // `started`: the projections that run when no definition says otherwise (first start, as
  // --start-standard-projections); the others exist, Stopped.
  SystemProjections(std::vector<projections::SystemProjection> started, NowMs now_ms);

  std::string name() const override { return "system projections"; }
  void start(LeaderContext& context) override;
  void stop() override;
  void on_record_committed(const EventRecord& record) override;
  // Each projection's status, for the projections API (core thread, while started).
  std::vector<projections::ProjectionStatus> describe() const;

  // Core thread, while started. EventStore's commands (enable, disable, abort, reset), the query
  // text and its replacement; `who` must be in $admins or $ops to change anything.
  void command(const Principal& who, projections::SystemProjection p, const std::string& command,
               Done done);
  void query(projections::SystemProjection p, Done done) const;
  void update_query(const Principal& who, projections::SystemProjection p, const std::string& query,
                    Done done);
  // The management routes: PUT query, GET config and query?config=yes; the standard projections
  // are not deleted and their config is fixed (400).
  void manage(const Principal& who, projections::SystemProjection p,
              const projections::ProjectionManagement& request, Done done);
  bool loaded() const { return loaded_; }

 private:
  // One projection's run-time state.
  struct Standard {
    bool enabled = false;
    projections::SystemRules rules;
    int64_t version = 0;
    int64_t epoch = 0;               // bumped by reset
    Position start;                  // records before it were linked earlier
    std::optional<Position> stop;    // disabled: links were issued for records before it
    std::optional<Position> replay;  // reset: records before it may be linked already
    Position checkpoint;             // the last checkpoint written or loaded
    bool definition_loaded = false;
    bool checkpoint_loaded = false;
  };
  // A page whose links were issued; complete when `remaining` reaches 0.
  struct Page {
    uint64_t id = 0;
    Position from;  // where its read started
    Position next;  // where the next read starts
    size_t remaining = 0;
    size_t links = 0;
    bool failed = false;  // a link met a transient failure: the page is written again
  };
  struct PendingLink {
    projections::SystemProjection projection;
    projections::Link link;
    Position source;
    bool replayed;  // may be in its target stream already
  };

  void load();
  void on_definition_loaded(projections::SystemProjection p, const ReadStreamResult& r);
  void on_checkpoint_loaded(projections::SystemProjection p, const ReadStreamResult& r);
  void maybe_begin();
  void read_next();
  void on_page(ReadAllResult page);
  void check_replayed(Position from, Position next, std::vector<PendingLink> links, bool more);
  void issue(Position from, Position next, std::vector<PendingLink> links, bool more);
  void on_link_written(uint64_t generation, uint64_t page_id, bool transient_failure);
  void complete_pages();
  void rewind(Position from);
  void maybe_checkpoint(bool force = false);
  void poll();
  bool wants(const Standard& s, const Position& at) const;
  Position progress_of(const Standard& s) const;
  void save_definition(projections::SystemProjection p, Done done);
  void restart_from(projections::SystemProjection p, Position from);
  bool alive(const std::shared_ptr<std::atomic<bool>>& token) const { return token && *token; }

  std::set<projections::SystemProjection> started_;
  NowMs now_ms_;
  LeaderContext* context_ = nullptr;
  std::shared_ptr<std::atomic<bool>> running_;
  std::map<projections::SystemProjection, Standard> standard_;
  size_t loads_pending_ = 0;  // definition and checkpoint reads at start
  bool loaded_ = false;
  Position cursor_;  // where the next read starts
  Position acked_;   // every link of every record before it is acknowledged
  bool reading_ = false;
  bool wake_ = false;  // records were committed while a read was in flight
  bool retry_scheduled_ = false;
  std::deque<Page> pages_;  // issued pages, oldest first
  uint64_t next_page_id_ = 1;
  uint64_t generation_ = 0;      // bumped by rewind(): acknowledgements of older pages are ignored
  int64_t links_unchecked_ = 0;  // links acknowledged since the last checkpoint
  int64_t records_read_ = 0;     // since this node started leading
  int64_t last_checkpoint_ms_ = 0;
  // While a projection replays after a reset: the source position of the last link each of its
  // target streams held when first looked at (none: Position{-1,-1} is not used; absent: unknown).
  std::map<std::string, Position> replayed_last_;
};

}  // namespace chorus
