// UserProjections: the leader service that runs user projections. Transient ones (as
// EventStore's) live in the leader's memory only. Continuous and one-time ones (which stop,
// Completed, at the end $all had when they were created) are kept in streams: the
// registry $projections-$all ($ProjectionCreated/$ProjectionDeleted), the definition
// $projections-<name> ($ProjectionUpdated: query, emit, run-as user) and checkpoints
// $projections-<name>-checkpoint (every partition's state, the $all position in metadata); a new
// leader loads them and resumes. A query that produces results (outputState, transformBy,
// filterBy) writes each changed result as EventStore does: a `Result` event (`ResultRemoved` when
// filtered out) to $projections-<name>-result, or for a partition to
// $projections-<name>-<partition>-result with a link to it in $projections-<name>-result. Each
// projection reads $all in pages and feeds its Projection on the projection threads
// (--projection-threads), one page in flight, so a Projection is used by one thread at a time (its
// mutex also serialises state and result queries). Emitted events get ids derived from the
// projection, the source position and their index, so after a failover the events written again
// from the checkpoint are idempotent retries; they are written with the creator's rights and never
// to system streams. Transient projections may not emit. Threading: the public methods and the
// LeaderService hooks run on the engine's core thread; JavaScript runs on the service's own pool,
// which it joins when destroyed.
#pragma once

#include "worker/projections/config.hpp"
#include "worker/projections/projection.hpp"
#include "worker/projections/status.hpp"
#include "worker/services/leader_services.hpp"

#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace chorus {

// Limits of the service (one place, with their reasons).
// Projections per leader: each holds a JavaScript heap of up to kJsHeapBytesDefault.
inline constexpr size_t kUserProjectionsMax = 32;
// Records of $all per page fed to one projection: bounds one page's time on a projection
// thread (and so how long a state query may wait for it).
inline constexpr int32_t kUserPageRecords = 200;
// A projection's name: a stream name part, not a document.
inline constexpr size_t kProjectionNameBytesMax = 200;
// A caught-up projection looks at $all at least this often.
inline constexpr int kUserPollMs = 500;
// A continuous projection checkpoints at most this long after it processed events: it bounds
// what a new leader processes (and writes, idempotently) again after a failover.
inline constexpr int64_t kUserCheckpointMs = 1'000;
// A continuous projection that failed to write is reloaded from its checkpoint after this long.
inline constexpr int kUserReloadMs = 500;

class UserProjections final : public LeaderService {
 public:
  using Post = std::function<void(std::function<void()>)>;
  using NowMs = std::function<int64_t()>;
  // `post_to_core` runs work on the engine's core thread.
  UserProjections(int threads, Post post_to_core, NowMs now_ms);
  ~UserProjections() override;

  std::string name() const override { return "user projections"; }
  void start(LeaderContext& context) override;
  void stop() override;
  void on_record_committed(const EventRecord& record) override;

  // Core thread. `done` runs on the core thread.
  // mode "transient", "onetime" or "continuous" (`emit`: whether a continuous one may emit).
  void create(const Principal& who, const std::string& mode, const std::string& name,
              const std::string& query, bool emit, bool track_emitted_streams,
              std::function<void(projections::ProjectionReply)> done);
  // DELETE with EventStore's options: the checkpoint stream, the state (result) streams and the
  // streams it emitted to (tracked ones only) are deleted when asked.
  void remove(const Principal& who, const projections::ProjectionManagement& request,
              std::function<void(projections::ProjectionReply)> done);
  // GET and PUT /config, GET /query?config=yes.
  void config(const Principal& who, const projections::ProjectionManagement& request,
              std::function<void(projections::ProjectionReply)> done);
  // The state (or the result) of `partition` ("" the root) as JSON, "" when there is none.
  void state(const std::string& name, const std::string& partition, bool result,
             std::function<void(projections::ProjectionReply)> done);
  void query(const std::string& name, std::function<void(projections::ProjectionReply)> done);
  // EventStore's commands: enable, disable (and abort, the same here), reset (start again from
  // the beginning of $all with fresh state; emitted events are written again only where missing).
  void command(const Principal& who, const std::string& name, const std::string& command,
               std::function<void(projections::ProjectionReply)> done);
  // Replaces the query (PUT /query): a continuous projection goes on from its last checkpoint
  // with the new query, others start again from the beginning of $all.
  // `emit` (PUT ?emit=) changes whether it may emit, when given.
  void update_query(const Principal& who, const std::string& name, const std::string& query,
                    std::optional<bool> emit,
                    std::function<void(projections::ProjectionReply)> done);
  std::vector<projections::ProjectionStatus> describe() const;
  bool running() const { return running_ && *running_; }

 private:
  struct Entry {
    std::string name;
    std::string query;
    std::string id;           // made at creation: a checkpoint of an earlier namesake is not ours
    bool persistent = false;  // continuous: kept in streams, resumed by the next leader
    projections::ProjectionConfig config;  // emitEnabled, trackEmittedStreams, thresholds
    int64_t version = 0;                   // bumped by each change of the definition
    std::set<std::string> tracked;         // emitted-to streams recorded in -emittedstreams
    bool enabled = true;    // disabled: it keeps its state and position and processes nothing
    bool one_time = false;  // in memory, stops at `stop_at` (the head when it was created)
    bool completed = false;
    Position stop_at;
    Principal run_as;  // whose rights emitted events are written with
    std::shared_ptr<projections::Projection> projection;  // used under `mutex` only
    std::shared_ptr<std::mutex> mutex = std::make_shared<std::mutex>();
    Position cursor = Position::start();
    Position checkpoint = Position::start();
    bool busy = false;
    bool removed = false;
    bool wake = false;
    std::string fault;
    int64_t processed = 0;
    int64_t processed_unchecked = 0;  // since the last checkpoint
    int64_t last_checkpoint_ms = 0;
    int64_t core_ms = 0;  // time spent feeding it since this node leads
    // A hash of the result last written per partition (projection thread, under `mutex`): only
    // changed results are written. Empty after a reload, so a new leader writes each result it
    // folds again once.
    std::map<std::string, size_t> result_hashes;
  };
  // A partition's result changed in a page: what goes to its result stream.
  struct ResultUpdate {
    std::string partition;              // "" the root
    std::optional<std::string> result;  // nullopt: filtered out (ResultRemoved)
    Position at;                        // the source event that changed it last
    std::string caused_by;              // that event's id
  };
  // A page's outcome from a projection thread.
  struct Fed {
    std::string fault;
    int64_t processed = 0;
    std::vector<std::pair<std::string, NewEvent>> emitted;  // target stream, event
    std::optional<std::string> snapshot;                    // when a checkpoint is due
    std::vector<ResultUpdate> results;                      // changed results, in page order
    std::string result_stream;                              // the root result stream
    int64_t elapsed_ms = 0;
  };

  void pump(const std::shared_ptr<Entry>& entry);
  void on_page(const std::shared_ptr<Entry>& entry, ReadAllResult page);
  void on_fed(const std::shared_ptr<Entry>& entry, Fed fed, Position next, bool full);
  void write_emitted(const std::shared_ptr<Entry>& entry, Fed fed, Position next, bool full);
  static void collect_results(projections::Projection& p, std::map<std::string, size_t>& written,
                              std::vector<ResultUpdate> touched, Fed& fed);
  void write_results(const std::shared_ptr<Entry>& entry, Fed fed, Position next, bool full);
  void link_results(const std::shared_ptr<Entry>& entry, std::vector<NewEvent> links,
                    const std::string& stream, std::optional<std::string> snapshot, Position next,
                    bool full);
  void page_done(const std::shared_ptr<Entry>& entry, std::optional<std::string> snapshot,
                 Position next, bool full);
  void poll();
  // Continuous projections: the registry, a definition with its checkpoint, a reload.
  void load_registry();
  void load(const std::string& name);
  void install(const std::string& name, const std::string& definition,
               std::optional<std::pair<std::string, Position>> checkpoint);
  void reload_later(const std::shared_ptr<Entry>& entry);
  void persist(const std::shared_ptr<Entry>& entry,
               std::function<void(projections::ProjectionReply)> done);
  void add(std::shared_ptr<Entry> entry);
  void save_definition(const std::shared_ptr<Entry>& entry,
                       std::function<void(projections::ProjectionReply)> done);
  std::string definition_of(const Entry& entry) const;
  void stored_state(const Entry& entry, const std::string& partition, bool result,
                    std::function<void(projections::ProjectionReply)> done);
  void track_emitted(const std::shared_ptr<Entry>& entry, const std::string& stream);
  void delete_emitted(const std::string& name);
  void delete_results(const std::string& result_stream, int64_t from,
                      std::set<std::string> partition_streams);

  boost::asio::thread_pool pool_;
  Post post_;
  NowMs now_ms_;
  LeaderContext* context_ = nullptr;
  std::shared_ptr<std::atomic<bool>> running_;
  std::map<std::string, std::shared_ptr<Entry>> entries_;
};

}  // namespace chorus
