// SystemProjections: the leader service that runs the standard projections ($streams,
// $stream_by_category, $by_category, $by_event_type, $by_correlation_id). It reads $all in pages
// from the oldest of their checkpoints, writes each page's `$>` links through the write path
// (replicated like any write, one link per append, in log order), waits until all of them are
// acknowledged, then moves on; a checkpoint ($projections-<name>-checkpoint) follows at most
// kSystemCheckpointMs after links were written. Links carry ids derived from the source position
// (worker/projections/system_projections.hpp), so a page written again after a restart or a
// failover is answered as an idempotent retry: no link is lost or written twice.
// Threading: everything runs on the engine's core thread (a LeaderService).
#pragma once

#include "worker/projections/system_projections.hpp"
#include "worker/services/leader_services.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

namespace chorus {

// Limits of the service (one place, with their reasons).
// Source records per $all page: bounds the links in flight (at most five per record).
inline constexpr int32_t kSystemPageRecords = 500;
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

  // Links written by this node since it started (for statistics and tests).
  int64_t links_written() const { return links_written_; }

 private:
  void load_checkpoints();
  void read_next();
  void on_page(ReadAllResult page);
  void write_links(std::vector<projections::Link> links, Position next);
  void on_links_written(Position next, size_t count, bool all_ok);
  void maybe_checkpoint(bool force);
  void retry_later();
  void poll();
  bool alive(const std::shared_ptr<std::atomic<bool>>& token) const { return token && *token; }

  std::vector<projections::SystemProjection> enabled_;
  NowMs now_ms_;
  LeaderContext* context_ = nullptr;
  std::shared_ptr<std::atomic<bool>> running_;
  std::map<projections::SystemProjection, Position> done_;  // next position each must process
  Position cursor_;                                         // next position to read
  size_t checkpoints_pending_ = 0;                          // loads at start
  bool loaded_ = false;
  bool busy_ = false;  // a read or a page of writes is in flight
  bool wake_ = false;  // records were committed while busy
  bool retry_scheduled_ = false;
  int64_t links_unchecked_ = 0;  // links written since the last checkpoint
  int64_t last_checkpoint_ms_ = 0;
  int64_t links_written_ = 0;
};

}  // namespace chorus
