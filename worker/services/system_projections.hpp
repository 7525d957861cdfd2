// SystemProjections: the leader service that runs the standard projections ($streams,
// $stream_by_category, $by_category, $by_event_type, $by_correlation_id). It reads $all in pages
// from the oldest of their checkpoints, writes each page's `$>` links through the write path
// (replicated like any write, one link per append, in log order) and reads on while up to
// kSystemPagesInFlightMax pages of links wait for their acknowledgements; a checkpoint
// ($projections-<name>-checkpoint) names the end of the acknowledged pages and follows at most
// kSystemCheckpointMs after links were written. Links carry ids derived from the source position
// (worker/projections/system_projections.hpp), so a page written again after a restart or a
// failover is answered as an idempotent retry: no link is lost or written twice.
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

class SystemProjections final : public LeaderService {
 public:
  using NowMs = std::function<int64_t()>;
  SystemProjections(std::vector<projections::SystemProjection> enabled, NowMs now_ms);

  std::string name() const override { return "system projections"; }
  void start(LeaderContext& context) override;
  void stop() override;
  void on_record_committed(const EventRecord& record) override;
  // Each projection's status, for the projections API (core thread, while started).
  std::vector<projections::ProjectionStatus> describe() const;

 private:
  // A page whose links were issued; complete when `remaining` reaches 0.
  struct Page {
    uint64_t id = 0;
    Position from;  // where its read started
    Position next;  // where the next read starts
    size_t remaining = 0;
    size_t links = 0;
    bool failed = false;  // a link met a transient failure: the page is written again
  };

  void load_checkpoints();
  void on_checkpoint_loaded(projections::SystemProjection p, const ReadStreamResult& r);
  void read_next();
  void on_page(ReadAllResult page);
  void on_link_written(uint64_t generation, uint64_t page_id, bool transient_failure);
  void complete_pages();
  void rewind(Position from);
  void maybe_checkpoint();
  void poll();
  bool alive(const std::shared_ptr<std::atomic<bool>>& token) const { return token && *token; }

  std::vector<projections::SystemProjection> enabled_;
  NowMs now_ms_;
  LeaderContext* context_ = nullptr;
  std::shared_ptr<std::atomic<bool>> running_;
  // Each projection's checkpoint at start: records before it were linked by an earlier leader.
  std::map<projections::SystemProjection, Position> start_;
  size_t checkpoints_pending_ = 0;  // loads at start
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
  Position checkpoint_;          // the last checkpoint written or loaded
  int64_t records_read_ = 0;     // since this node started leading
  int64_t last_checkpoint_ms_ = 0;
};

}  // namespace chorus
